package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

const (
	// jwksTimeout bounds one JWKS fetch.
	jwksTimeout = 10 * time.Second
	// maxJWKSBytes bounds a JWKS response body.
	maxJWKSBytes = 1 << 20
	// maxKIDInReason is the longest kid quoted in a denial reason.
	maxKIDInReason = 64
)

// jwksKeys holds the keys of a remote JWK Set. The set is fetched at start,
// then every refresh interval by a goroutine that jwksKeys owns (sooner
// while no fetch has succeeded), and when a token names a kid the set
// lacks, at most once per interval: a flood of tokens with made-up kids
// costs one fetch per interval. Concurrent lookups of an unknown kid share
// one fetch. A failed fetch keeps the last good set.
//
// The refresh goroutine starts with the first token looked up, so an
// authorizer that is built and never used, as by wsgate validate, leaves
// nothing running; until then the keys fetched at start are current.
//
// The fetching is written here rather than left to jwkset's HTTP storage so
// that Close can wait for the refresh goroutine, failures reach the injected
// logger, and an unknown kid over the rate limit is refused at once instead
// of waiting for the limiter.
type jwksKeys struct {
	url        string
	every      time.Duration
	client     *http.Client
	logger     *slog.Logger
	unknownKID *rate.Limiter

	// set is the current key set; gen counts successful fetches.
	set atomic.Pointer[jwkSet]
	gen atomic.Uint64

	// fetchMu serializes fetches, so that lookups of a new kid that arrive
	// together wait for one fetch instead of each making their own.
	fetchMu sync.Mutex
	// lastAttempt is when the last fetch began.
	lastAttempt time.Time

	// The refresh goroutine is started by the first lookup (start) and
	// ended by the context or close.
	ctx       context.Context
	cancel    context.CancelFunc
	startOnce sync.Once
	// lifeMu orders start against close, so that no goroutine starts after
	// close has waited.
	lifeMu sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// errNoJWKS is a lookup before any fetch has succeeded.
var errNoJWKS = fmt.Errorf("no JWK Set fetched: %w", jwkset.ErrKeyNotFound)

// jwkSet is one fetched JWK Set.
type jwkSet struct {
	kf      keyfunc.Keyfunc
	keyfunc jwt.Keyfunc
}

func newJWKSKeys(ctx context.Context, url string, every time.Duration, logger *slog.Logger) *jwksKeys {
	if every <= 0 {
		every = time.Hour
	}
	// Keep-alives are off: fetches are rare, and without idle connections
	// nothing outlives Close.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	ctx, cancel := context.WithCancel(ctx)
	k := &jwksKeys{
		url:        url,
		every:      every,
		client:     &http.Client{Transport: transport, Timeout: jwksTimeout},
		logger:     logger,
		unknownKID: rate.NewLimiter(rate.Every(every), 1),
		ctx:        ctx,
		cancel:     cancel,
	}
	if err := k.fetch(); err != nil {
		logger.Warn("JWKS fetch failed; tokens are refused until a retry succeeds", "url", url, "error", err)
	}
	return k
}

// start launches the refresh goroutine, once, unless close came first.
func (k *jwksKeys) start() {
	k.startOnce.Do(func() {
		k.lifeMu.Lock()
		defer k.lifeMu.Unlock()
		if k.closed {
			return
		}
		k.wg.Add(1)
		go k.run()
	})
}

func (k *jwksKeys) close() {
	k.lifeMu.Lock()
	k.closed = true
	k.lifeMu.Unlock()
	k.cancel()
	k.wg.Wait()
}

// run refreshes the set one interval after the last fetch attempt, until
// the context ends. While no fetch has succeeded it retries sooner, from one
// second doubling up to the interval.
func (k *jwksKeys) run() {
	defer k.wg.Done()
	retry := time.Second
	for {
		k.fetchMu.Lock()
		wait := k.every - time.Since(k.lastAttempt)
		k.fetchMu.Unlock()
		if k.set.Load() == nil {
			wait = min(retry, k.every)
			retry = min(2*retry, k.every)
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		var err error
		k.fetchMu.Lock()
		// A fetch for an unknown kid may have come in between.
		if k.set.Load() == nil || time.Since(k.lastAttempt) >= k.every {
			err = k.fetch()
		}
		k.fetchMu.Unlock()
		if err != nil && k.ctx.Err() == nil {
			k.logger.Warn("JWKS refresh failed; keeping the last good key set", "url", k.url, "error", err)
		}
	}
}

// fetch downloads the set and makes it current. The caller holds fetchMu,
// or is the constructor. Keys that cannot be used to
// verify signatures (symmetric keys, "use": "enc", unsupported key types)
// are skipped; a set with no usable key is an error.
func (k *jwksKeys) fetch() error {
	k.lastAttempt = time.Now()
	ctx, cancel := context.WithTimeout(k.ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("GET %s: JWK Set larger than %d bytes", k.url, maxJWKSBytes)
	}
	var raw jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &raw); err != nil {
		return fmt.Errorf("GET %s: not a JWK Set: %w", k.url, err)
	}
	store := jwkset.NewMemoryStorage()
	for i, m := range raw.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			k.logger.Debug("JWKS key skipped", "index", i, "kid", m.KID, "kty", m.KTY, "error", err)
			continue
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			return err
		}
	}
	if keys, _ := store.KeyReadAll(ctx); len(keys) == 0 {
		return fmt.Errorf("GET %s: the JWK Set has no usable signature verification key", k.url)
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store})
	if err != nil {
		return err
	}
	k.set.Store(&jwkSet{kf: kf, keyfunc: kf.KeyfuncCtx(context.Background())})
	k.gen.Add(1)
	return nil
}

// keyfunc returns the key for t. A kid that the set lacks triggers one
// rate-limited fetch; a token without a kid is tried against every key
// that fits its alg.
func (k *jwksKeys) keyfunc(t *jwt.Token) (any, error) {
	k.start()
	gen := k.gen.Load()
	key, err := k.lookup(t)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return key, err
	}
	refreshed := k.refreshForUnknownKID(gen)
	if refreshed {
		key, err = k.lookup(t)
	}
	switch {
	case errors.Is(err, errNoJWKS):
		return nil, &keyError{reason: "no JWKS fetched yet", undecided: true}
	case !refreshed:
		return nil, &keyError{reason: "unknown kid" + quoteKID(t) + "; JWKS refresh not due yet", undecided: true}
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, &keyError{reason: "unknown kid" + quoteKID(t) + " after JWKS refresh"}
	}
	return key, err
}

// refreshForUnknownKID fetches the set unless another fetch has completed
// since gen was read or the limiter forbids it, and reports whether a
// lookup is worth retrying.
func (k *jwksKeys) refreshForUnknownKID(gen uint64) bool {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if k.gen.Load() != gen {
		return true
	}
	if !k.unknownKID.Allow() {
		return false
	}
	if err := k.fetch(); err != nil {
		k.logger.Warn("JWKS refresh for an unknown kid failed", "url", k.url, "error", err)
		return false
	}
	return true
}

// lookup finds t's key in the current set. The error wraps
// jwkset.ErrKeyNotFound when t's kid is not in the set or no set has been
// fetched yet.
func (k *jwksKeys) lookup(t *jwt.Token) (any, error) {
	set := k.set.Load()
	if set == nil {
		return nil, errNoJWKS
	}
	alg := t.Method.Alg()
	got, err := set.keyfunc(t)
	if err != nil {
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			return nil, err
		}
		if _, ok := t.Header["kid"].(string); !ok {
			return nil, &keyError{reason: "kid header is not a string"}
		}
		return nil, &keyError{reason: "the JWKS key for kid" + quoteKID(t) + " is for another alg than " + alg}
	}
	switch key := got.(type) {
	case jwt.VerificationKeySet:
		var fit jwt.VerificationKeySet
		for _, candidate := range key.Keys {
			if keyFits(alg, candidate) {
				fit.Keys = append(fit.Keys, candidate)
			}
		}
		if len(fit.Keys) == 0 {
			return nil, &keyError{reason: "token has no kid and no JWKS key fits alg " + alg}
		}
		return fit, nil
	default:
		if !keyFits(alg, key) {
			return nil, &keyError{reason: "the JWKS key for kid" + quoteKID(t) + " does not fit alg " + alg}
		}
		return key, nil
	}
}

// quoteKID returns " \"kid\"" for a short string kid, else "".
func quoteKID(t *jwt.Token) string {
	kid, ok := t.Header["kid"].(string)
	if !ok || len(kid) > maxKIDInReason {
		return ""
	}
	return fmt.Sprintf(" %q", kid)
}
