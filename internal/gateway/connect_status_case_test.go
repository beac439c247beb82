package gateway_test

import (
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestConnectStatusCodeMemberCase: the status of a $connect proxy
// response is its "statusCode" member, checked to be from 100 to 599. A
// member spelled in another case ("StatusCode", which encoding/json would
// match to the same field) neither replaces it nor brings an unchecked
// status to the handshake, which net/http refuses to write (the client
// would see the connection dropped, the gateway a recovered panic).
func TestConnectStatusCodeMemberCase(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, ""))
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"statusCode":5000}`, 502},
		{`{"statusCode":200,"StatusCode":5000}`, 101},
		{`{"statusCode":403,"STATUSCODE":99999}`, 403},
		{`{"statusCode":200,"statuscode":401}`, 101},
	} {
		b.On("/connect", func(gt.Event) gt.Reply { return gt.Reply{Body: tt.body} })
		if got := dialStatus(g.URL, nil); got != tt.want {
			t.Errorf("$connect answering %s: handshake %d, want %d", tt.body, got, tt.want)
		}
	}
}
