package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// awsFrame is a reply of an AWS integration route, decoded.
type awsFrame struct {
	Status         string `json:"status"`
	RequestID      string `json:"requestId"`
	MessageID      string `json:"messageId"`
	SequenceNumber string `json:"sequenceNumber"`
	EventID        string `json:"eventId"`
	Message        string `json:"message"`
}

func nextAWSFrame(t *testing.T, c *gt.Client) (awsFrame, string) {
	t.Helper()
	raw := c.NextText()
	var f awsFrame
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return f, raw
}

// motoClients are SDK clients of a moto_server, for setting up queues,
// topics and buses and reading what arrived.
type motoClients struct {
	sqs *sqs.Client
	sns *sns.Client
	eb  *eventbridge.Client
}

func newMotoClients(t *testing.T, url string) *motoClients {
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	// moto_server tells the services apart by the signature's scope:
	// requests to it are signed, with any key.
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: gt.TestSigV4KeyID, SecretAccessKey: gt.TestSigV4Secret}, nil
	})
	return &motoClients{
		sqs: sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, HTTPClient: hc}),
		sns: sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, HTTPClient: hc}),
		eb:  eventbridge.New(eventbridge.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, HTTPClient: hc}),
	}
}

func (m *motoClients) queue(t *testing.T, name string) string {
	t.Helper()
	in := &sqs.CreateQueueInput{QueueName: aws.String(name)}
	if strings.HasSuffix(name, ".fifo") {
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	out, err := m.sqs.CreateQueue(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// receive returns the one message waiting in queue.
func (m *motoClients) receive(t *testing.T, queue string) sqstypes.Message {
	t.Helper()
	out, err := m.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue),
		MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}, WaitTimeSeconds: 2})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive from %s: %v, %d messages", queue, err, len(out.Messages))
	}
	return out.Messages[0]
}

func attr(m sqstypes.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

// TestAWSIntegrations runs sqs, sns and eventbridge routes over real
// sockets against moto_server: $connect sent to a queue, a FIFO queue
// grouped by tenant and user, a topic delivering to a subscribed queue, an
// event bus, a route signed for the wrong region answered with AWS's error
// frame, and then an outage of the service.
func TestAWSIntegrations(t *testing.T) {
	moto := servicetest.Moto(t)
	m := newMotoClients(t, moto.URL)
	ctx := context.Background()
	connects := m.queue(t, "connects")
	orders := m.queue(t, "orders.fifo")
	topic, err := m.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("announcements")})
	if err != nil {
		t.Fatal(err)
	}
	announced := m.queue(t, "announced")
	if _, err := m.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:announced"), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("chat")}); err != nil {
		t.Fatal(err)
	}
	signals := m.queue(t, "signals")
	if _, err := m.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventBusName: aws.String("chat"),
		EventPattern: aws.String(`{"source":["wsgate"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all"), EventBusName: aws.String("chat"),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:signals")}}}); err != nil {
		t.Fatal(err)
	}
	signer := servicetest.AWS(t, aws.Credentials{AccessKeyID: gt.TestSigV4KeyID, SecretAccessKey: gt.TestSigV4Secret}, "us-east-1")

	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [tenant]}
routes:
  $connect: {integration: {type: sqs, endpoint: %[1]q, queue_url: %[2]q, access_key_id: %[6]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}}
  order:
    integration: {type: sqs, endpoint: %[1]q, queue_url: %[3]q, message_group_id: "{authorizer.tenant}-{principalId}", payload: body, timeout: 2s, access_key_id: %[6]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
    route_response: true
  announce:
    integration: {type: sns, endpoint: %[1]q, topic_arn: %[4]q, payload: body, access_key_id: %[6]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
    route_response: true
  signal:
    integration: {type: eventbridge, endpoint: %[1]q, event_bus: chat, source: wsgate, payload: body, access_key_id: %[6]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
    route_response: true
  signed:
    integration: {type: sqs, endpoint: %[5]q, queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/q", access_key_id: %[6]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
    route_response: true
  wrongregion:
    integration: {type: sqs, endpoint: %[5]q, region: eu-west-1, queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/q", access_key_id: %[6]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, moto.URL, connects, orders, aws.ToString(topic.TopicArn), signer.URL, gt.TestSigV4KeyID))

	c := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "alice", "acme"), nil)

	// $connect succeeded once its event was in the queue.
	cm := m.receive(t, connects)
	var connect struct {
		RequestContext struct{ EventType, ConnectionID string }
	}
	if err := json.Unmarshal([]byte(aws.ToString(cm.Body)), &connect); err != nil || connect.RequestContext.EventType != "CONNECT" ||
		attr(cm, "connectionId") != connect.RequestContext.ConnectionID || attr(cm, "principalId") != "alice" || attr(cm, "eventType") != "CONNECT" {
		t.Fatalf("$connect message %s %v", aws.ToString(cm.Body), cm.MessageAttributes)
	}
	connID := connect.RequestContext.ConnectionID

	body := `{"action":"order","item":"tea"}`
	c.Send(body)
	f, raw := nextAWSFrame(t, c)
	if f.Status != "accepted" || f.MessageID == "" || f.SequenceNumber == "" || f.RequestID == "" {
		t.Fatalf("ack %s", raw)
	}
	om := m.receive(t, orders)
	if aws.ToString(om.Body) != body || aws.ToString(om.MessageId) != f.MessageID || om.Attributes["MessageGroupId"] != "acme-alice" ||
		om.Attributes["MessageDeduplicationId"] != f.RequestID || attr(om, "requestId") != f.RequestID ||
		attr(om, "connectionId") != connID || attr(om, "routeKey") != "order" || !strings.Contains(attr(om, "authorizer"), `"tenant":"acme"`) {
		t.Errorf("order message %+v", om)
	}

	body = `{"action":"announce","text":"hello all"}`
	c.Send(body)
	if f, raw = nextAWSFrame(t, c); f.Status != "accepted" || f.MessageID == "" || f.SequenceNumber != "" {
		t.Fatalf("ack %s", raw)
	}
	am := m.receive(t, announced)
	if aws.ToString(am.Body) != body || attr(am, "connectionId") != connID || attr(am, "requestId") != f.RequestID {
		t.Errorf("announcement %+v", am)
	}

	c.Send(`{"action":"signal","kind":"wave"}`)
	if f, raw = nextAWSFrame(t, c); f.Status != "accepted" || f.EventID == "" {
		t.Fatalf("ack %s", raw)
	}
	// The bus's rule delivered the event to a queue, as EventBridge
	// delivers: the envelope, the message as its detail.
	var envelope struct {
		ID         string         `json:"id"`
		Source     string         `json:"source"`
		DetailType string         `json:"detail-type"`
		Detail     map[string]any `json:"detail"`
	}
	sm := m.receive(t, signals)
	if err := json.Unmarshal([]byte(aws.ToString(sm.Body)), &envelope); err != nil || envelope.ID != f.EventID ||
		envelope.Source != "wsgate" || envelope.DetailType != "signal" || envelope.Detail["kind"] != "wave" {
		t.Errorf("event delivered: %s (%v)", aws.ToString(sm.Body), err)
	}

	c.Send(`{"action":"signed"}`)
	if f, raw = nextAWSFrame(t, c); f.Status != "accepted" || f.MessageID == "" {
		t.Fatalf("signed route: %s", raw)
	}
	c.Send(`{"action":"wrongregion"}`)
	if f, raw = nextAWSFrame(t, c); f.Message != "Internal server error" {
		t.Fatalf("route signed for another region: %s", raw)
	}
	if n := len(signer.Requests()); n != 1 {
		t.Errorf("the signing server accepted %d requests, want 1", n)
	}

	// A $connect whose message the service refuses (no such queue)
	// refuses the handshake with 502.
	refusing := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: sqs, endpoint: %[1]q, queue_url: %[2]q, access_key_id: %[3]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}}
`, moto.URL, moto.URL+"/123456789012/missing", gt.TestSigV4KeyID))
	if status := dialStatus(refusing.URL, nil); status != 502 {
		t.Errorf("handshake with a failing $connect: %d, want 502", status)
	}

	// Outage: moto_server killed, then started again (empty: the queue is
	// made again).
	moto.Stop()
	c.Send(`{"action":"order","item":"during"}`)
	if f, raw = nextAWSFrame(t, c); f.Message != "Internal server error" {
		t.Fatalf("order while the service is down: %s", raw)
	}
	c.Send("echo during the outage")
	if got := c.NextText(); got != "echo during the outage" {
		t.Fatalf("echo %q", got)
	}
	moto.Start()
	m.queue(t, "orders.fifo")
	gt.Eventually(t, func() bool {
		c.Send(`{"action":"order","item":"after"}`)
		f, _ := nextAWSFrame(t, c)
		return f.Status == "accepted"
	}, "order accepted once the service is back")
	if om := m.receive(t, orders); !strings.Contains(aws.ToString(om.Body), `"after"`) {
		t.Errorf("message after the outage: %s", aws.ToString(om.Body))
	}
}

// TestAWSConfigProblems: the secret an AWS route names is read at start; a
// missing one is reported at its line as missing.
func TestAWSConfigProblems(t *testing.T) {
	cfg, err := config.Parse("wsgate.yaml", []byte(`routes:
  order:
    integration:
      type: sqs
      queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/orders
      access_key_id: AKIAIOSFODNN7EXAMPLE
      secret_access_key_env: WSGATE_TEST_UNSET_AWS_SECRET
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(string) string { return "" }})
	want := "wsgate.yaml:7: routes.order.integration.secret_access_key_env: environment variable WSGATE_TEST_UNSET_AWS_SECRET is unset or empty"
	if err == nil || !strings.Contains(err.Error(), want) || !config.IsMissing(err) {
		t.Fatalf("err = %v, want %q, missing", err, want)
	}
}

// TestAWSEnvironmentCredentials runs sqs, sns and eventbridge routes with
// credentials: environment against the SigV4-checking stand-in: the keys
// and session token come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, the endpoints from the service variables, or from
// AWS_ENDPOINT_URL for a service without one, and an endpoint in the
// config wins over both.
func TestAWSEnvironmentCredentials(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIAWSGATEENVKEY0001", SecretAccessKey: "wsgate-env-secret/abc+def", SessionToken: "wsgate-env-session"}
	sqsSrv := servicetest.AWS(t, creds, "eu-west-1")
	common := servicetest.AWS(t, creds, "eu-west-1")
	own := servicetest.AWS(t, creds, "eu-west-1")
	cfg, err := config.Parse("wsgate.yaml", []byte(fmt.Sprintf(`
routes:
  order:
    integration: {type: sqs, credentials: environment, region: eu-west-1, queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders", payload: body}
    route_response: true
  announce:
    integration: {type: sns, credentials: environment, region: eu-west-1, topic_arn: "arn:aws:sns:eu-west-1:123456789012:news", payload: body}
    route_response: true
  signal:
    integration: {type: eventbridge, credentials: environment, region: eu-west-1, endpoint: %q, source: wsgate, payload: body}
    route_response: true
`, own.URL)))
	if err != nil {
		t.Fatal(err)
	}
	g := gt.StartConfigEnv(t, cfg, map[string]string{
		"AWS_ACCESS_KEY_ID":     creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
		"AWS_SESSION_TOKEN":     creds.SessionToken,
		"AWS_ENDPOINT_URL_SQS":  sqsSrv.URL,
		"AWS_ENDPOINT_URL":      common.URL,
	})
	c := gt.Dial(t, g.URL, nil)
	for _, tc := range []struct {
		action string
		srv    *servicetest.AWSServer
		op     string
	}{
		{"order", sqsSrv, "AmazonSQS.SendMessage"},
		{"announce", common, "SNS.Publish"},
		{"signal", own, "AWSEvents.PutEvents"},
	} {
		body := `{"action":"` + tc.action + `"}`
		c.Send(body)
		if f, raw := nextAWSFrame(t, c); f.Status != "accepted" {
			t.Fatalf("%s: %s", tc.action, raw)
		}
		reqs := tc.srv.Requests()
		if len(reqs) != 1 || reqs[0].Operation != tc.op || reqs[0].Header.Get("X-Amz-Security-Token") != creds.SessionToken {
			t.Fatalf("%s: requests %+v", tc.action, reqs)
		}
	}
	if strings.Contains(g.Logs.String(), creds.SecretAccessKey) || strings.Contains(g.Logs.String(), creds.SessionToken) {
		t.Error("a secret reached the log")
	}
}

// TestAWSEnvironmentCredentialsProblems: with credentials: environment,
// unset keys are missing (validate lists them apart, serve refuses), and
// an endpoint variable that is not a URL is a problem.
func TestAWSEnvironmentCredentialsProblems(t *testing.T) {
	cfg, err := config.Parse("wsgate.yaml", []byte(`routes:
  order:
    integration:
      type: sqs
      queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/orders
      credentials: environment
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(string) string { return "" }})
	for _, want := range []string{
		"wsgate.yaml:6: routes.order.integration.credentials: environment variable AWS_ACCESS_KEY_ID is unset or empty",
		"wsgate.yaml:6: routes.order.integration.credentials: environment variable AWS_SECRET_ACCESS_KEY is unset or empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if !config.IsMissing(err) {
		t.Errorf("not missing: %v", err)
	}

	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAWSGATEENVKEY0001", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "AWS_ENDPOINT_URL_SQS": "localhost:4566"}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(k string) string { return env[k] }})
	want := "wsgate.yaml:6: routes.order.integration.credentials: environment variable AWS_ENDPOINT_URL_SQS is not an http:// or https:// URL without credentials"
	if err == nil || err.Error() != want || config.IsMissing(err) {
		t.Errorf("err = %v, want %q, not missing", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "s3cr3t-value") {
		t.Error("the secret reached the error")
	}
}
