package gateway_test

import (
	"fmt"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// README: "Items are delivered in order". A connection that is the target
// of a topic item, then of a connectionId item, then of a principalId item
// receives the three messages in the order of the items.
func TestBatchItemsArriveInOrder(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, jwtConfig(b, ""))
	c := dialUser(t, g, b, "u1", 0, nil)
	mgmtJSON(t, g, "PUT", "/@connections/"+c.ID+"/topics/room", "", 204, nil)

	body := fmt.Sprintf(`{"items":[
		{"topic":"room","data":"1"},
		{"connectionId":%q,"data":"2"},
		{"principalId":"u1","data":"3"},
		{"connectionId":%q,"data":"4"}
	]}`, c.ID, c.ID)
	mgmtJSON(t, g, "POST", "/@batch", body, 200, nil)
	for _, want := range []string{"1", "2", "3", "4"} {
		if got := c.NextText(); got != want {
			t.Fatalf("got %q, want %q: batch items must arrive in the order they are given", got, want)
		}
	}
}
