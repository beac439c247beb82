package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestFromEvent(t *testing.T) {
	for name, c := range map[string]struct {
		json string
		want delivery
		err  string
	}{
		"message": {
			json: `{"requestContext":{"routeKey":"$default","eventType":"MESSAGE","connectionId":"L0SM9cOFvHcCIhw=","requestId":"JjHEL9BgHPXq3R0="},"body":"{\"a\":1}","isBase64Encoded":false}`,
			want: delivery{connectionID: "L0SM9cOFvHcCIhw=", eventType: "MESSAGE", requestID: "JjHEL9BgHPXq3R0=", body: []byte(`{"a":1}`)},
		},
		"binary": {
			json: `{"requestContext":{"eventType":"MESSAGE","connectionId":"c1"},"body":"AP8=","isBase64Encoded":true}`,
			want: delivery{connectionID: "c1", eventType: "MESSAGE", body: []byte{0, 0xff}},
		},
		"disconnect": {
			json: `{"requestContext":{"eventType":"DISCONNECT","connectionId":"c1"},"disconnectStatusCode":1000}`,
			want: delivery{connectionID: "c1", eventType: "DISCONNECT", body: []byte{}},
		},
		"no connection id": {json: `{"requestContext":{"eventType":"MESSAGE"},"body":"x"}`, err: "no connection id in requestContext.connectionId"},
		"not JSON":         {json: `hello`, err: "not an AWS event JSON"},
		"bad base64":       {json: `{"requestContext":{"connectionId":"c1"},"body":"%%","isBase64Encoded":true}`, err: "the body is not base64"},
	} {
		d, err := fromEvent([]byte(c.json))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", name, err, c.err)
			}
			continue
		}
		if err != nil || !sameDelivery(d, c.want) {
			t.Errorf("%s: %+v %v, want %+v", name, d, err, c.want)
		}
	}
}

func TestFromRedisEntry(t *testing.T) {
	event := map[string]any{"connectionId": "ignored", "eventType": "MESSAGE",
		"event": `{"requestContext":{"eventType":"MESSAGE","connectionId":"c1","requestId":"r1"},"body":"hi"}`}
	body := map[string]any{"connectionId": "c2", "routeKey": "raw", "eventType": "MESSAGE", "requestId": "r2", "body": "hello"}
	if d, err := fromRedisEntry(event); err != nil || !sameDelivery(d, delivery{connectionID: "c1", eventType: "MESSAGE", requestID: "r1", body: []byte("hi")}) {
		t.Errorf("event entry: %+v %v", d, err)
	}
	if d, err := fromRedisEntry(body); err != nil || !sameDelivery(d, delivery{connectionID: "c2", eventType: "MESSAGE", requestID: "r2", body: []byte("hello")}) {
		t.Errorf("body entry: %+v %v", d, err)
	}
	if _, err := fromRedisEntry(map[string]any{"body": "x"}); !errors.Is(err, errNoConnectionID) {
		t.Errorf("body entry without connectionId: %v", err)
	}
	if _, err := fromRedisEntry(map[string]any{}); err == nil {
		t.Error("an entry without event or body was accepted (a deleted entry reads so)")
	}
}

func TestFromBodyHeaders(t *testing.T) {
	// NATS headers are canonical MIME headers: any case finds them.
	h := http.Header{}
	h.Set("wsgate-connection-id", "c1")
	h.Set("WSGATE-EVENT-TYPE", "MESSAGE")
	d, err := fromBody([]byte("x"), h.Get, natsConnectionIDHeader, natsEventTypeHeader, natsRequestIDHeader)
	if err != nil || d.connectionID != "c1" || d.eventType != "MESSAGE" || d.requestID != "" {
		t.Errorf("nats headers: %+v %v", d, err)
	}
	// AMQP headers are case-sensitive; the worker looks them up in any case.
	for _, headers := range []map[string]any{
		{"Wsgate-Connection-Id": "c1"},
		{"wsgate-connection-id": "c1"},
		{"WSGATE-CONNECTION-ID": []byte("c1")},
	} {
		lookup := func(name string) string { return amqpHeader(headers, name) }
		d, err := fromBody([]byte("x"), lookup, amqpConnectionIDHeader, amqpEventTypeHeader, amqpRequestIDHeader)
		if err != nil || d.connectionID != "c1" {
			t.Errorf("amqp headers %v: %+v %v", headers, d, err)
		}
	}
	lookup := func(name string) string {
		return amqpHeader(map[string]any{"connection-id": "c1", "Wsgate-Connection-Id": 42}, name)
	}
	if _, err := fromBody([]byte("x"), lookup, amqpConnectionIDHeader, amqpEventTypeHeader, amqpRequestIDHeader); !errors.Is(err, errNoConnectionID) {
		t.Errorf("no string Wsgate-Connection-Id header: %v, want errNoConnectionID", err)
	}
}

func TestWork(t *testing.T) {
	for body, want := range map[string]string{
		`{"action":"work","text":"hi"}`: `{"action":"result","requestId":"r1","input":{"action":"work","text":"hi"},"upper":"{\"ACTION\":\"WORK\",\"TEXT\":\"HI\"}","worker":"w1"}`,
		`hello`:                         `{"action":"result","requestId":"r1","input":"hello","upper":"HELLO","worker":"w1"}`,
		``:                              `{"action":"result","requestId":"r1","input":"","upper":"","worker":"w1"}`,
	} {
		if got := string(work(delivery{requestID: "r1", body: []byte(body)}, "w1")); got != want {
			t.Errorf("work(%q) = %s, want %s", body, got, want)
		}
	}
}

func sameDelivery(a, b delivery) bool {
	return a.connectionID == b.connectionID && a.eventType == b.eventType && a.requestID == b.requestID && string(a.body) == string(b.body)
}
