package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsgate/wsgate/internal/servicetest"
)

var testAWSCreds = aws.Credentials{AccessKeyID: "AKIAWSGATETEST000001", SecretAccessKey: "wsgate-test-secret-key", SessionToken: "wsgate-session"}

// awsOptions points at srv with its credentials and a client of the test's
// own, closed when the test ends.
func awsOptions(t testing.TB, endpoint, region string, creds aws.Credentials) AWSOptions {
	c := NewClient()
	t.Cleanup(c.CloseIdleConnections)
	return AWSOptions{Endpoint: endpoint, Region: region, Credentials: creds, Client: c}
}

// ackKeys decodes an acknowledgement and checks its keys, in order.
func ackKeys(t *testing.T, resp *Response, keys ...string) map[string]any {
	t.Helper()
	ack := decodeAck(t, resp)
	var order []string
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		order = append(order, k.(string))
		var v any
		_ = dec.Decode(&v)
	}
	if strings.Join(order, ",") != strings.Join(keys, ",") || ack["status"] != "accepted" {
		t.Errorf("ack %s, want the keys %v", resp.Body, keys)
	}
	return ack
}

// wantIdentity checks the identity attributes of a message from
// messageEvent(…, "alice"), as name → value.
func wantIdentity(t *testing.T, got map[string]string, ev *Event) {
	t.Helper()
	want := map[string]string{
		"connectionId": ev.RequestContext.ConnectionID, "routeKey": "sendmessage", "eventType": "MESSAGE",
		"requestId": ev.RequestContext.RequestID, "principalId": "alice",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	var ctx map[string]any
	if err := json.Unmarshal([]byte(got["authorizer"]), &ctx); err != nil || ctx["tenant"] != "acme" {
		t.Errorf("attribute authorizer = %q", got["authorizer"])
	}
	if len(got) != 6 {
		t.Errorf("attributes %v, want 6", got)
	}
}

func TestSQSRequests(t *testing.T) {
	srv := servicetest.AWS(t, testAWSCreds, "eu-west-1")
	o := awsOptions(t, srv.URL, "eu-west-1", testAWSCreds)
	const std, fifo = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders", "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"
	for _, tc := range []struct {
		queue   string
		payload Payload
	}{{std, PayloadEvent}, {std, PayloadBody}, {fifo, PayloadEvent}, {fifo, PayloadBody}} {
		before := len(srv.Requests())
		var q *SQS
		if tc.queue == fifo {
			q = NewSQS(o, tc.queue, mustTemplate(t, "{authorizer.tenant}-{principalId}"), tc.payload, 5*time.Second)
		} else {
			q = NewSQS(o, tc.queue, nil, tc.payload, 5*time.Second)
		}
		ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"hi"}`, "alice")
		resp, err := q.Invoke(context.Background(), ev)
		if err != nil {
			t.Fatalf("%s payload %d: %v", tc.queue, tc.payload, err)
		}
		reqs := srv.Requests()
		if len(reqs) != before+1 {
			t.Fatalf("%d requests, want 1", len(reqs)-before)
		}
		r := reqs[before]
		if r.Operation != "AmazonSQS.SendMessage" || r.JSON["QueueUrl"] != tc.queue {
			t.Errorf("request %s %v", r.Operation, r.JSON)
		}
		body, _ := r.JSON["MessageBody"].(string)
		if tc.payload == PayloadBody && body != ev.Body {
			t.Errorf("body %q", body)
		}
		if tc.payload == PayloadEvent {
			var got Event
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.RequestContext.RequestID != ev.RequestContext.RequestID || got.Body != ev.Body {
				t.Errorf("event body %q: %v", body, err)
			}
		}
		attrs := map[string]string{}
		for name, a := range r.JSON["MessageAttributes"].(map[string]any) {
			m := a.(map[string]any)
			if m["DataType"] != "String" {
				t.Errorf("attribute %s: %v", name, m)
			}
			attrs[name], _ = m["StringValue"].(string)
		}
		wantIdentity(t, attrs, ev)
		if tc.queue == fifo {
			if r.JSON["MessageGroupId"] != "acme-alice" || r.JSON["MessageDeduplicationId"] != ev.RequestContext.RequestID {
				t.Errorf("FIFO ids: %v %v", r.JSON["MessageGroupId"], r.JSON["MessageDeduplicationId"])
			}
			ack := ackKeys(t, resp, "status", "requestId", "messageId", "sequenceNumber")
			if ack["requestId"] != ev.RequestContext.RequestID || ack["messageId"] == "" || ack["sequenceNumber"] == "" {
				t.Errorf("ack %s", resp.Body)
			}
		} else {
			if _, ok := r.JSON["MessageDeduplicationId"]; ok {
				t.Errorf("deduplication id on a standard queue")
			}
			ackKeys(t, resp, "status", "requestId", "messageId")
		}
	}
}

// TestSQSBinaryBody: with payload body, a binary message goes as its
// base64 text, marked by the isBase64Encoded attribute, since SQS and SNS
// messages are text.
func TestSQSBinaryBody(t *testing.T) {
	srv := servicetest.AWS(t, testAWSCreds, "us-east-1")
	o := awsOptions(t, srv.URL, "us-east-1", testAWSCreds)
	ev := messageEvent("c", "AAH/", "alice")
	ev.IsBase64Encoded = true
	if _, err := NewSQS(o, "https://sqs.us-east-1.amazonaws.com/123456789012/q", nil, PayloadBody, 5*time.Second).Invoke(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	a, _ := r.JSON["MessageAttributes"].(map[string]any)["isBase64Encoded"].(map[string]any)
	if r.JSON["MessageBody"] != "AAH/" || a["StringValue"] != "true" {
		t.Errorf("request %v", r.JSON)
	}
}

func TestSNSRequests(t *testing.T) {
	srv := servicetest.AWS(t, testAWSCreds, "us-east-1")
	o := awsOptions(t, srv.URL, "", testAWSCreds)
	const std, fifo = "arn:aws:sns:us-east-1:123456789012:orders", "arn:aws:sns:us-east-1:123456789012:orders.fifo"
	for _, tc := range []struct {
		topic   string
		payload Payload
	}{{std, PayloadEvent}, {std, PayloadBody}, {fifo, PayloadBody}} {
		before := len(srv.Requests())
		var s *SNS
		if tc.topic == fifo {
			s = NewSNS(o, tc.topic, mustTemplate(t, "{body.room}"), tc.payload, 5*time.Second)
		} else {
			s = NewSNS(o, tc.topic, nil, tc.payload, 5*time.Second)
		}
		ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","room":"lobby"}`, "alice")
		resp, err := s.Invoke(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		r := srv.Requests()[before]
		f := r.Form
		if r.Operation != "SNS.Publish" || f.Get("TopicArn") != tc.topic {
			t.Errorf("request %s %v", r.Operation, f)
		}
		if tc.payload == PayloadBody && f.Get("Message") != ev.Body || tc.payload == PayloadEvent && !strings.Contains(f.Get("Message"), `"requestId":"`+ev.RequestContext.RequestID+`"`) {
			t.Errorf("message %q", f.Get("Message"))
		}
		attrs := map[string]string{}
		for i := 1; f.Get("MessageAttributes.entry."+strconv.Itoa(i)+".Name") != ""; i++ {
			p := "MessageAttributes.entry." + strconv.Itoa(i)
			if f.Get(p+".Value.DataType") != "String" {
				t.Errorf("%s: %v", p, f)
			}
			attrs[f.Get(p+".Name")] = f.Get(p + ".Value.StringValue")
		}
		wantIdentity(t, attrs, ev)
		if tc.topic == fifo {
			if f.Get("MessageGroupId") != "lobby" || f.Get("MessageDeduplicationId") != ev.RequestContext.RequestID {
				t.Errorf("FIFO ids: %v", f)
			}
			ackKeys(t, resp, "status", "requestId", "messageId", "sequenceNumber")
		} else {
			if f.Has("MessageGroupId") || f.Has("MessageDeduplicationId") {
				t.Errorf("FIFO ids on a standard topic: %v", f)
			}
			ackKeys(t, resp, "status", "requestId", "messageId")
		}
	}
}

func TestEventBridgeRequests(t *testing.T) {
	srv := servicetest.AWS(t, testAWSCreds, "us-east-1")
	o := awsOptions(t, srv.URL, "us-east-1", testAWSCreds)
	for _, p := range []Payload{PayloadEvent, PayloadBody} {
		before := len(srv.Requests())
		e := NewEventBridge(o, "chat", "wsgate", mustTemplate(t, "{routeKey}"), p, 5*time.Second)
		ev := messageEvent("L0SM9cOFvHcCIhw=", ` {"action":"sendmessage","text":"hi"}`, "alice")
		ev.RequestContext.RequestTimeEpoch = 1700000000123
		resp, err := e.Invoke(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		r := srv.Requests()[before]
		entries, _ := r.JSON["Entries"].([]any)
		if r.Operation != "AWSEvents.PutEvents" || len(entries) != 1 {
			t.Fatalf("request %s %v", r.Operation, r.JSON)
		}
		entry := entries[0].(map[string]any)
		if entry["Source"] != "wsgate" || entry["DetailType"] != "sendmessage" || entry["EventBusName"] != "chat" || entry["Time"] != 1700000000.123 {
			t.Errorf("entry %v", entry)
		}
		var detail map[string]any
		if err := json.Unmarshal([]byte(entry["Detail"].(string)), &detail); err != nil {
			t.Fatal(err)
		}
		if p == PayloadBody && (detail["text"] != "hi" || len(detail) != 2) {
			t.Errorf("detail %v", detail)
		}
		if rc, _ := detail["requestContext"].(map[string]any); p == PayloadEvent && rc["connectionId"] != "L0SM9cOFvHcCIhw=" {
			t.Errorf("detail %v", detail)
		}
		ack := ackKeys(t, resp, "status", "requestId", "eventId")
		if ack["eventId"] == "" || ack["requestId"] != ev.RequestContext.RequestID {
			t.Errorf("ack %s", resp.Body)
		}
	}
	before := len(srv.Requests())
	e := NewEventBridge(o, "default", "wsgate", mustTemplate(t, "{routeKey}"), PayloadBody, 5*time.Second)
	for _, body := range []string{`["not","an","object"]`, `hello`, `{"broken":`, ``} {
		if _, err := e.Invoke(context.Background(), messageEvent("c", body, "")); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("body %q: %v", body, err)
		}
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("%d requests for messages that are no JSON objects", n)
	}
}

// TestAWSFailures checks that every failure is an ErrFailed error that
// names the cause and never holds the secret key.
func TestAWSFailures(t *testing.T) {
	srv := servicetest.AWS(t, testAWSCreds, "us-east-1")
	good := awsOptions(t, srv.URL, "us-east-1", testAWSCreds)
	wrongSecret := good
	wrongSecret.Credentials.SecretAccessKey = "not-the-secret"
	wrongRegion := good
	wrongRegion.Region = "eu-west-1"
	unsigned := good
	unsigned.Credentials = aws.Credentials{}
	gone := servicetest.AWS(t, testAWSCreds, "us-east-1")
	gone.Close()
	closed := awsOptions(t, gone.URL, "us-east-1", testAWSCreds)

	const queue, topic = "https://sqs.us-east-1.amazonaws.com/123456789012/q", "arn:aws:sns:us-east-1:123456789012:t"
	kinds := map[string]func(o AWSOptions, timeout time.Duration) Integration{
		"sqs": func(o AWSOptions, d time.Duration) Integration { return NewSQS(o, queue, nil, PayloadEvent, d) },
		"sns": func(o AWSOptions, d time.Duration) Integration { return NewSNS(o, topic, nil, PayloadEvent, d) },
		"eventbridge": func(o AWSOptions, d time.Duration) Integration {
			return NewEventBridge(o, "default", "wsgate", mustTemplate(t, "{routeKey}"), PayloadEvent, d)
		},
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name    string
		opts    AWSOptions
		handle  func(w http.ResponseWriter, r *servicetest.AWSRequest) bool
		timeout time.Duration
		want    string
	}{
		{"bad signature", wrongSecret, nil, 5 * time.Second, "signature"},
		{"wrong region", wrongRegion, nil, 5 * time.Second, "credential scope"},
		{"unsigned", unsigned, nil, 5 * time.Second, "Authentication Token"},
		{"service error", good, func(w http.ResponseWriter, r *servicetest.AWSRequest) bool {
			if r.Service == "sns" {
				servicetest.XMLError(w, 404, "NotFound", "Topic does not exist")
			} else {
				servicetest.JSONError(w, 400, "ResourceNotFoundException", "does not exist")
			}
			return true
		}, 5 * time.Second, "does not exist"},
		{"5xx", good, func(w http.ResponseWriter, r *servicetest.AWSRequest) bool {
			http.Error(w, "upstream trouble", http.StatusServiceUnavailable)
			return true
		}, 5 * time.Second, "answered 503"},
		{"no answer within the timeout", good, func(w http.ResponseWriter, r *servicetest.AWSRequest) bool {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return true
		}, 100 * time.Millisecond, "not acknowledged within 100ms"},
		{"server gone", closed, nil, 5 * time.Second, "connection refused"},
	}
	for _, tt := range tests {
		for kind, mk := range kinds {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				srv.Handle(tt.handle)
				defer srv.Handle(nil)
				_, err := mk(tt.opts, tt.timeout).Invoke(context.Background(), messageEvent("c", `{"a":1}`, "alice"))
				if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want ErrFailed naming %q", err, tt.want)
				}
				if err != nil && (strings.Contains(err.Error(), testAWSCreds.SecretAccessKey) || strings.Contains(err.Error(), "not-the-secret")) {
					t.Errorf("the error holds a secret: %v", err)
				}
			})
		}
	}

	t.Run("eventbridge failed entry", func(t *testing.T) {
		srv.Handle(func(w http.ResponseWriter, r *servicetest.AWSRequest) bool {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = w.Write([]byte(`{"FailedEntryCount":1,"Entries":[{"ErrorCode":"InternalFailure","ErrorMessage":"try again"}]}`))
			return true
		})
		defer srv.Handle(nil)
		_, err := kinds["eventbridge"](good, 5*time.Second).Invoke(context.Background(), messageEvent("c", `{}`, ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "InternalFailure try again") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("group placeholder unresolved", func(t *testing.T) {
		before := len(srv.Requests())
		q := NewSQS(good, queue+".fifo", mustTemplate(t, "{principalId}"), PayloadEvent, 5*time.Second)
		_, err := q.Invoke(context.Background(), messageEvent("c", `{}`, ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "placeholder {principalId}") {
			t.Errorf("err = %v", err)
		}
		q = NewSQS(good, queue+".fifo", mustTemplate(t, "{body.g}"), PayloadEvent, 5*time.Second)
		if _, err := q.Invoke(context.Background(), messageEvent("c", `{"g":"a b"}`, "")); !errors.Is(err, ErrFailed) || strings.Contains(err.Error(), "a b") {
			t.Errorf("err = %v, want a failure without the value", err)
		}
		if n := len(srv.Requests()) - before; n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

// TestAWSAgainstMoto sends through each integration to moto_server, an
// independent implementation of the three APIs, and reads the SQS
// messages back with the SDK: the requests are ones AWS's own protocol
// accepts, FIFO ids and attributes included.
func TestAWSAgainstMoto(t *testing.T) {
	moto := servicetest.Moto(t)
	o := awsOptions(t, moto.URL, "us-east-1", testAWSCreds)
	ctx := context.Background()
	sqsc := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL), Credentials: o.credentials(), HTTPClient: o.Client})
	queue := func(name string, attrs map[string]string) string {
		out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	receive := func(url string) sqstypes.Message {
		t.Helper()
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}, WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) != 1 {
			t.Fatalf("receive from %s: %v, %d messages", url, err, len(out.Messages))
		}
		return out.Messages[0]
	}
	attrs := func(m sqstypes.Message) map[string]string {
		out := map[string]string{}
		for k, v := range m.MessageAttributes {
			out[k] = aws.ToString(v.StringValue)
		}
		return out
	}

	fifo := queue("orders.fifo", map[string]string{"FifoQueue": "true"})
	ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"hi"}`, "alice")
	resp, err := NewSQS(o, fifo, mustTemplate(t, "{principalId}"), PayloadBody, 5*time.Second).Invoke(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	ack := ackKeys(t, resp, "status", "requestId", "messageId", "sequenceNumber")
	m := receive(fifo)
	if aws.ToString(m.Body) != ev.Body || aws.ToString(m.MessageId) != ack["messageId"] ||
		m.Attributes["MessageGroupId"] != "alice" || m.Attributes["MessageDeduplicationId"] != ev.RequestContext.RequestID {
		t.Errorf("message %+v", m)
	}
	wantIdentity(t, attrs(m), ev)

	// SNS to a subscribed queue, delivered raw: the attributes arrive as
	// SQS message attributes.
	snsc := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL), Credentials: o.credentials(), HTTPClient: o.Client})
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("chat")})
	if err != nil {
		t.Fatal(err)
	}
	sub := queue("chat-sub", nil)
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:chat-sub"), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	ev = messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"to all"}`, "alice")
	resp, err = NewSNS(o, aws.ToString(topic.TopicArn), nil, PayloadEvent, 5*time.Second).Invoke(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	ackKeys(t, resp, "status", "requestId", "messageId")
	m = receive(sub)
	var got Event
	if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &got); err != nil || got.Body != ev.Body {
		t.Errorf("SNS message %q: %v", aws.ToString(m.Body), err)
	}
	wantIdentity(t, attrs(m), ev)

	ebc := eventbridge.New(eventbridge.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL), Credentials: o.credentials(), HTTPClient: o.Client})
	if _, err := ebc.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("chat")}); err != nil {
		t.Fatal(err)
	}
	resp, err = NewEventBridge(o, "chat", "wsgate", mustTemplate(t, "{routeKey}"), PayloadBody, 5*time.Second).Invoke(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ack := ackKeys(t, resp, "status", "requestId", "eventId"); ack["eventId"] == "" {
		t.Errorf("ack %s", resp.Body)
	}

	// A queue that does not exist: the service's error.
	_, err = NewSQS(o, moto.URL+"/123456789012/missing", nil, PayloadEvent, 5*time.Second).Invoke(ctx, ev)
	if !errors.Is(err, ErrFailed) {
		t.Errorf("missing queue: %v", err)
	}
}
