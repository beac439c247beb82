package integration

import (
	"context"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestRedisConnectionSetupErrorFailsPublication checks that an error Redis
// answers while a connection is being set up (here SELECT of a database
// the server does not have, as with a wrong password) fails the
// publication instead of acknowledging a stream entry that was never added.
func TestRedisConnectionSetupErrorFailsPublication(t *testing.T) {
	srv := servicetest.Redis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts RedisOptions
	}{
		{"db out of range", RedisOptions{URL: "redis://" + srv.Addr + "/99"}},
		{"password refused", RedisOptions{URL: "redis://" + srv.Addr + "/0", Password: "not-the-password"}},
	} {
		if tc.opts.Password != "" {
			if err := redisClient(t, srv).ConfigSet(ctx, "requirepass", "the-password").Err(); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			conn, err := DialRedis(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, r := range []*Redis{
				{Conn: conn, Stream: mustTemplate(t, "chat"), Timeout: 5 * time.Second},
				{Conn: conn, Channel: mustTemplate(t, "chat"), Timeout: 5 * time.Second},
			} {
				resp, err := r.Invoke(ctx, messageEvent("L0SM9cOFvHcCIhw=", `{"text":"hi"}`, "alice"))
				if err == nil {
					t.Errorf("stream=%v: accepted %s; want an error", r.Stream != nil, resp.Body)
				}
			}
		})
	}
}
