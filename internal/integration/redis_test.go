package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/servicetest"
)

func dialRedis(t testing.TB, url string) *RedisConn {
	t.Helper()
	c, err := DialRedis(RedisOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func redisClient(t testing.TB, srv *servicetest.RedisServer) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisStreamBothPayloads(t *testing.T) {
	srv := servicetest.Redis(t)
	conn := dialRedis(t, srv.URL())
	rc := redisClient(t, srv)
	ctx := context.Background()
	for _, mode := range []Payload{PayloadEvent, PayloadBody} {
		r := &Redis{Conn: conn, Stream: mustTemplate(t, "chat:{principalId}"), Payload: mode, Timeout: 5 * time.Second}
		ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"hi"}`, "alice")
		resp, err := r.Invoke(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		ack := decodeAck(t, resp)
		id, _ := ack["id"].(string)
		if ack["status"] != "accepted" || ack["requestId"] != ev.RequestContext.RequestID || ack["stream"] != "chat:alice" || id == "" || len(ack) != 4 {
			t.Errorf("ack %s", resp.Body)
		}
		entries, err := rc.XRange(ctx, "chat:alice", id, id).Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("XRANGE %s: %v %v", id, entries, err)
		}
		v := entries[0].Values
		for k, want := range map[string]string{
			"connectionId": "L0SM9cOFvHcCIhw=", "routeKey": "sendmessage", "eventType": "MESSAGE",
			"requestId": ev.RequestContext.RequestID, "principalId": "alice",
		} {
			if v[k] != want {
				t.Errorf("field %s = %v, want %q", k, v[k], want)
			}
		}
		if !strings.Contains(fmt.Sprint(v["authorizer"]), `"tenant":"acme"`) {
			t.Errorf("field authorizer = %v", v["authorizer"])
		}
		if mode == PayloadBody {
			if v["body"] != ev.Body || v["event"] != nil {
				t.Errorf("body payload: fields %v", v)
			}
		} else {
			want, _ := json.Marshal(ev)
			if v["event"] != string(want) || v["body"] != nil {
				t.Errorf("event payload: fields %v", v)
			}
		}
	}
}

func TestRedisStreamMaxLen(t *testing.T) {
	srv := servicetest.Redis(t)
	conn := dialRedis(t, srv.URL())
	rc := redisClient(t, srv)
	r := &Redis{Conn: conn, Stream: mustTemplate(t, "trimmed"), MaxLen: 10, Payload: PayloadBody, Timeout: 5 * time.Second}
	for i := range 1000 {
		if _, err := r.Invoke(context.Background(), messageEvent("c", fmt.Sprint(i), "")); err != nil {
			t.Fatal(err)
		}
	}
	// Approximate trimming keeps whole macro nodes (100 entries by
	// default) beyond the limit, never all 1000.
	n, err := rc.XLen(context.Background(), "trimmed").Result()
	if err != nil || n < 10 || n >= 1000 {
		t.Errorf("XLEN = %d, %v; want trimmed to about 10", n, err)
	}
}

func TestRedisChannelAndPlaceholders(t *testing.T) {
	srv := servicetest.Redis(t)
	conn := dialRedis(t, srv.URL())
	rc := redisClient(t, srv)
	ctx := context.Background()
	sub := rc.PSubscribe(ctx, "room:*")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	ch := sub.Channel()
	r := &Redis{Conn: conn, Channel: mustTemplate(t, "room:{body.room}"), Timeout: 5 * time.Second}
	for _, room := range []string{"lobby", "kitchen"} {
		ev := messageEvent("c", `{"room":"`+room+`"}`, "")
		resp, err := r.Invoke(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		ack := decodeAck(t, resp)
		if ack["channel"] != "room:"+room || ack["receivers"] != float64(1) {
			t.Errorf("ack %s", resp.Body)
		}
		select {
		case m := <-ch:
			want, _ := json.Marshal(ev)
			if m.Channel != "room:"+room || m.Payload != string(want) {
				t.Errorf("got %s %q", m.Channel, m.Payload)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
	}
	_, err := r.Invoke(ctx, messageEvent("c", `not json`, ""))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "placeholder {body.room}: the message is not JSON") {
		t.Errorf("unresolvable placeholder: %v", err)
	}
}

func TestRedisDownAtStart(t *testing.T) {
	srv := servicetest.Redis(t)
	srv.Stop()
	conn := dialRedis(t, srv.URL())
	r := &Redis{Conn: conn, Stream: mustTemplate(t, "s"), Timeout: 20 * time.Second}
	start := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), messageEvent("c", "x", ""))
		start <- err
	}()
	select {
	case err := <-start:
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("while down: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publishing while Redis is down waited")
	}
	srv.Start()
	eventually(t, func() bool {
		_, err := r.Invoke(context.Background(), messageEvent("c", "x", ""))
		return err == nil
	}, "publishing once Redis is up")
}

// TestRedisOutage appends from several goroutines while Redis stops and
// starts again. The test server keeps nothing across a restart, so what
// must hold is checked on the server that comes back: every publication
// acknowledged after the restart is in the stream, and none failed without
// being reported.
func TestRedisOutage(t *testing.T) {
	srv := servicetest.Redis(t)
	conn := dialRedis(t, srv.URL())
	r := &Redis{Conn: conn, Stream: mustTemplate(t, "out"), Payload: PayloadBody, Timeout: 2 * time.Second}
	rc := redisClient(t, srv)
	var beforeStop []string
	acked, failed := runPublishers(t, r, func() {
		entries, err := rc.XRange(context.Background(), "out", "-", "+").Result()
		if err != nil {
			t.Error(err)
		}
		for _, e := range entries {
			beforeStop = append(beforeStop, e.ID)
		}
		srv.Stop()
	}, srv.Start)
	if failed == 0 {
		t.Fatal("no publication failed while Redis was down")
	}
	entries, err := rc.XRange(context.Background(), "out", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	for _, e := range entries {
		stored[e.ID] = fmt.Sprint(e.Values["body"])
	}
	for _, id := range beforeStop {
		stored[id] = "(before the restart)"
	}
	for body, id := range acked {
		if got, ok := stored[id]; !ok || (got != body && got != "(before the restart)") {
			t.Errorf("acknowledged %q (entry %s) is not in the stream", body, id)
		}
	}
}

// TestRedisPipelinesConcurrentAppends appends from many goroutines at
// once: every append is acknowledged with the id of its own entry, and the
// appends share pipelines, so the gateway writes to Redis far fewer times
// than it appends.
func TestRedisPipelinesConcurrentAppends(t *testing.T) {
	srv := servicetest.Redis(t)
	var writes atomic.Int64
	p := startProxy(t, srv.Addr, func([]byte) { writes.Add(1) })
	conn := dialRedis(t, "redis://"+p.addr+"/0")
	r := &Redis{Conn: conn, Stream: mustTemplate(t, "rounds"), Payload: PayloadBody, Timeout: 10 * time.Second}
	const workers, each = 64, 40
	// The pool's connections are made, and counted, before the appends.
	for range 2 {
		if _, err := r.Invoke(context.Background(), messageEvent("c", "warm", "")); err != nil {
			t.Fatal(err)
		}
	}
	before := writes.Load()
	var mu sync.Mutex
	acked := map[string]string{} // entry id → body
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprint(w, "-", i)
				resp, err := r.Invoke(context.Background(), messageEvent(fmt.Sprint("c", w), body, ""))
				if err != nil {
					t.Errorf("append failed: %v", err)
					return
				}
				mu.Lock()
				acked[fmt.Sprint(decodeAck(t, resp)["id"])] = body
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sent := writes.Load() - before
	if t.Failed() {
		return
	}
	entries, err := redisClient(t, srv).XRange(context.Background(), "rounds", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) != workers*each || len(entries) != workers*each+2 {
		t.Fatalf("%d distinct ids acknowledged, %d entries, want %d", len(acked), len(entries), workers*each)
	}
	for _, e := range entries[2:] {
		if body := fmt.Sprint(e.Values["body"]); acked[e.ID] != body {
			t.Errorf("entry %s holds %q, acknowledged with %q", e.ID, body, acked[e.ID])
		}
	}
	if sent < 1 || sent > workers*each/2 {
		t.Errorf("%d writes to Redis for %d appends made 64 at a time, want at least 1 and at most half as many", sent, workers*each)
	}
	t.Logf("%d writes to Redis for %d appends", sent, workers*each)
}

// TestRedisAfterClose checks that publishing through a closed pool fails
// at once, and that Close may be called again.
func TestRedisAfterClose(t *testing.T) {
	srv := servicetest.Redis(t)
	conn, err := DialRedis(RedisOptions{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{Conn: conn, Stream: mustTemplate(t, "closed"), Timeout: 20 * time.Second}
	if _, err := r.Invoke(context.Background(), messageEvent("c", "x", "")); err != nil {
		t.Fatalf("before Close: %v", err)
	}
	_ = conn.Close()
	_ = conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), messageEvent("c", "x", ""))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrFailed) {
			t.Errorf("after Close: %v, want ErrFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publishing through a closed pool waited")
	}
}

// TestRedisPipelineErrorsStayWithTheirCommand appends concurrently to a
// stream and to a key that is not one: the appends to the key fail with
// the server's error, and the others, in the same pipelines, succeed.
func TestRedisPipelineErrorsStayWithTheirCommand(t *testing.T) {
	srv := servicetest.Redis(t)
	if err := redisClient(t, srv).Set(context.Background(), "notastream", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	conn := dialRedis(t, srv.URL())
	good := &Redis{Conn: conn, Stream: mustTemplate(t, "good"), Payload: PayloadBody, Timeout: 10 * time.Second}
	bad := &Redis{Conn: conn, Stream: mustTemplate(t, "notastream"), Payload: PayloadBody, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				in := Integration(good)
				if (w+i)%2 == 0 {
					in = bad
				}
				_, err := in.Invoke(context.Background(), messageEvent("c", "x", ""))
				switch {
				case in == bad && (!errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "WRONGTYPE")):
					t.Errorf("append to a string key: %v, want the WRONGTYPE error", err)
					return
				case in == good && err != nil:
					t.Errorf("append to the stream: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, err := redisClient(t, srv).XLen(context.Background(), "good").Result(); err != nil || n != 16*25 {
		t.Errorf("the stream holds %d entries (%v), want %d", n, err, 16*25)
	}
}
