package servicetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresUser and PostgresPassword are the superuser of the test
// clusters. Connections over TCP authenticate with the password
// (scram-sha-256), so tests see a DSN that holds a secret.
const (
	PostgresUser     = "wsgate"
	PostgresPassword = "wsgate-test-pg-s3cret"
)

// postgresStopTimeout bounds a fast shutdown before the server is killed.
const postgresStopTimeout = 15 * time.Second

// PostgresServer is a throwaway PostgreSQL cluster: initdb in a temporary
// directory, a postgres child process listening on 127.0.0.1 on a free
// port with its Unix socket in that directory, fsync off. When the tests
// run as root it runs as the user nobody, since postgres refuses to run as
// root. It can be stopped and started again on the same port and data,
// to simulate an outage. Its methods are safe for concurrent use.
type PostgresServer struct {
	// Port is the TCP port; it stays the same across Stop and Start.
	Port int

	bin  string // the directory holding initdb and postgres
	dir  string // removed by close
	cred *syscall.Credential

	// mu guards cmd and exited.
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Postgres starts a cluster of its own for the test and removes it when
// the test ends. initdb takes seconds: tests that do not stop the server
// share one with SharedPostgres. It skips the test when PostgreSQL is not
// installed, unless WSGATE_REQUIRE_SERVICES=1, when it fails it.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin := postgresBin(t)
	s, err := newPostgres(bin)
	if err != nil {
		t.Fatalf("servicetest: postgres: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

// shared is the cluster SharedPostgres hands out, started once per test
// binary and removed by StopShared.
var shared struct {
	mu  sync.Mutex
	srv *PostgresServer
}

// SharedPostgres returns the test binary's shared cluster, starting it on
// first use, or again when a test stopped it. The package's TestMain must
// call StopShared after the tests. Tests using it make their own tables.
func SharedPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin := postgresBin(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		s, err := newPostgres(bin)
		if err != nil {
			t.Fatalf("servicetest: postgres: %v", err)
		}
		shared.srv = s
	}
	shared.srv.Start(t)
	return shared.srv
}

// StopShared stops and removes the cluster SharedPostgres started, if
// any. Call it from TestMain once the tests have run, before checking for
// leaked goroutines.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.close()
		shared.srv = nil
	}
}

// postgresBin returns the directory holding initdb and postgres: the
// newest /usr/lib/postgresql/*/bin (Debian's layout), or where initdb is
// on the PATH. It skips or fails the test when there is none.
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("PostgreSQL not installed (%s=1 requires it): install the postgresql package", RequireEnv)
	}
	t.Skip("PostgreSQL not installed (no initdb in /usr/lib/postgresql/*/bin or on the PATH); install the postgresql package to run this test, or set " + RequireEnv + "=1 to make its absence a failure")
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// newPostgres runs initdb and starts the server on a free port.
func newPostgres(bin string) (*PostgresServer, error) {
	s := &PostgresServer{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root, and postgres refuses root: no user nobody to run it as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is private to root, and the server's
	// user must reach the directory.
	dir, err := os.MkdirTemp("", "wsgate-postgres-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if err := s.initdb(); err != nil {
		s.close()
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePostgresPort(); err != nil {
			s.close()
			return nil, err
		}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	s.close()
	return nil, lastErr
}

func (s *PostgresServer) initdb() error {
	pw := filepath.Join(s.dir, "password")
	if err := os.WriteFile(pw, []byte(PostgresPassword+"\n"), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		if err := os.Chmod(s.dir, 0o755); err != nil {
			return err
		}
		for _, p := range []string{s.dir, pw} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return err
			}
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"),
		"-D", filepath.Join(s.dir, "data"),
		"-U", PostgresUser, "--pwfile", pw,
		"--auth-host", "scram-sha-256", "--auth-local", "trust",
		"-E", "UTF8", "--locale", "C", "--no-sync")
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DSN returns a postgres:// URL of the database postgres, with the
// password; it stays the same across Stop and Start.
func (s *PostgresServer) DSN() string {
	return s.DSNFor("postgres")
}

// DSNFor returns the URL of database db.
func (s *PostgresServer) DSNFor(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(PostgresUser, PostgresPassword),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Conn opens a connection to the database dsn names, for the test to
// inspect it, closed when the test ends.
func (s *PostgresServer) Conn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("servicetest: connecting to postgres: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// databases numbers the databases NewDatabase creates.
var databases atomic.Int64

// NewDatabase creates an empty database for the test and returns its
// DSN; it is dropped when the test ends, if the server is running then.
func (s *PostgresServer) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), databases.Add(1))
	admin := s.Conn(t, s.DSN())
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("servicetest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if s.ping() != nil {
			return
		}
		c, err := pgx.Connect(ctx, s.DSN())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.DSNFor(name)
}

// Stop shuts the server down (a fast shutdown: sessions are ended, clients
// see their connections close) and waits for it to exit. Stopping a
// stopped server does nothing.
func (s *PostgresServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

func (s *PostgresServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(postgresStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.exited = nil, nil
}

// Start starts a stopped server again on the same port and data and waits
// until it answers; starting a running server does nothing. It fails t if
// the server does not come up.
func (s *PostgresServer) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("servicetest: starting postgres on port %d: %v", s.Port, err)
	}
}

func (s *PostgresServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.Port),
		"-h", "127.0.0.1",
		"-k", s.dir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=200",
		"-c", "log_min_messages=warning",
	)
	cmd.Dir = s.dir
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	// SIGQUIT, an immediate shutdown, should the test binary die without
	// stopping the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.ping()
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited: %s", strings.TrimSpace(out.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("not ready within %v: %v", startTimeout, err)
		}
	}
}

// ping connects and runs a query.
func (s *PostgresServer) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return errors.New("SELECT 1 did not answer 1")
	}
	return nil
}

// close stops the server and removes its directory.
func (s *PostgresServer) close() {
	s.Stop()
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// freePostgresPort returns a free port of 127.0.0.1 other than
// PostgreSQL's default 5432, where a system server may run.
func freePostgresPort() (int, error) {
	for {
		port, err := freePort()
		if err != nil || port != 5432 {
			return port, err
		}
	}
}
