package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wsgate/wsgate/internal/destination"
)

// The AWS integrations (SQS, SNS, EventBridge) publish like the NATS and
// Redis ones: each event goes to the service in one API call, made with the
// aws-sdk-go-v2 client of that service, and the integration answers once
// the service has acknowledged it. The SDK's retries are off: as for every
// integration, nothing is retried by wsgate, and a call whose answer was
// lost is reported as failed. Connections are the HTTP client's, made when
// a call needs one.

// AWSOptions locate an AWS service and sign the requests to it.
type AWSOptions struct {
	// Endpoint is the service's base URL; "" means the AWS endpoint of
	// Region.
	Endpoint string
	// Region signs requests and picks the AWS endpoint. Default
	// "us-east-1".
	Region string
	// Credentials sign requests with SigV4 when AccessKeyID is set; the
	// zero value sends unsigned requests, which only local servers take.
	Credentials aws.Credentials
	// Client makes the HTTP calls; nil means a process-wide client from
	// NewClient.
	Client *http.Client
}

func (o AWSOptions) region() string {
	if o.Region == "" {
		return "us-east-1"
	}
	return o.Region
}

func (o AWSOptions) endpoint() *string {
	if o.Endpoint == "" {
		return nil
	}
	return aws.String(strings.TrimRight(o.Endpoint, "/"))
}

func (o AWSOptions) credentials() aws.CredentialsProvider {
	if o.Credentials.AccessKeyID == "" {
		return aws.AnonymousCredentials{}
	}
	c := o.Credentials
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

func (o AWSOptions) client() *http.Client {
	if o.Client == nil {
		return defaultClient
	}
	return o.Client
}

// awsAccepted is the acknowledgement of an AWS integration. Its JSON is the
// frame a client gets on a route with route_response:
//
//	{"status":"accepted","requestId":"…","messageId":"…"}                        sqs, sns
//	{"status":"accepted","requestId":"…","messageId":"…","sequenceNumber":"…"}   sqs, sns: FIFO
//	{"status":"accepted","requestId":"…","eventId":"…"}                          eventbridge
//
// requestId is the event's requestContext.requestId, also the message's
// deduplication id on a FIFO queue or topic.
type awsAccepted struct {
	Status         string `json:"status"`
	RequestID      string `json:"requestId"`
	MessageID      string `json:"messageId,omitempty"`
	SequenceNumber string `json:"sequenceNumber,omitempty"`
	EventID        string `json:"eventId,omitempty"`
}

func (a *awsAccepted) response() *Response {
	a.Status = "accepted"
	b, _ := json.Marshal(a)
	return &Response{StatusCode: 200, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}

// textPayload returns what an SQS or SNS message carries for ev: the event
// JSON, or the client's message. A binary message is sent as its base64
// text, since these messages are text, and base64 is true.
func textPayload(p Payload, ev *Event) (body string, base64 bool, err error) {
	if p == PayloadEvent {
		b, err := encodeEvent(ev)
		if err != nil {
			return "", false, err
		}
		return string(b), false, nil
	}
	return ev.Body, ev.IsBase64Encoded, nil
}

// groupID is the rule for a placeholder's value in a message group id:
// letters, digits and ASCII punctuation, at most 128 characters in all.
func groupID(v string) error {
	for _, c := range v {
		if c <= ' ' || c > '~' {
			return errors.New("the value holds a character other than letters, digits and punctuation, which a message group id cannot")
		}
	}
	return nil
}

// messageGroup expands t, when it is set, into a message group id.
func messageGroup(t *destination.Template, ev *Event) (*string, error) {
	if t == nil {
		return nil, nil
	}
	g, err := expand(t, ev, groupID)
	if err != nil {
		return nil, err
	}
	if len(g) > 128 {
		return nil, failf("message group id longer than 128 characters")
	}
	return &g, nil
}

// awsFailed describes an SDK error as an integration failure: the service's
// error code, message and HTTP status, or what kept the call from
// completing. A call cut short by the integration's own timeout (callCtx
// done while the caller's ctx is not) says so.
func awsFailed(ctx, callCtx context.Context, what string, timeout time.Duration, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		status := 0
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		msg := apiErr.ErrorMessage()
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return failf("%s answered %d %s: %s", what, status, apiErr.ErrorCode(), msg)
	}
	if callCtx.Err() != nil && ctx.Err() == nil {
		return failf("%s: not acknowledged within %v", what, timeout)
	}
	if ctx.Err() != nil {
		return failf("%s: %v", what, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return failf("%s: %v", what, ue.Err)
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return failf("%s answered %d: %v", what, re.HTTPStatusCode(), re.Err)
	}
	return failf("%s: %v", what, err)
}

// identityAttributes returns the identity of ev (see identity), and
// isBase64Encoded when base64 is true, as SQS or SNS message attributes of
// type String, through attr.
func identityAttributes[T any](ev *Event, base64 bool, attr func(string) T) map[string]T {
	fields := identity(ev)
	out := make(map[string]T, len(fields)+1)
	for _, f := range fields {
		if f.value != "" {
			out[f.name] = attr(f.value)
		}
	}
	if base64 {
		out["isBase64Encoded"] = attr("true")
	}
	return out
}

// SQS sends each event to an SQS queue with SendMessage, acknowledged with
// the message id (and, on a FIFO queue, its sequence number). The message
// body is the event JSON or the client's message; the identity travels in
// String message attributes named as the Redis stream fields
// (connectionId, routeKey, eventType, requestId, principalId, authorizer).
// On a FIFO queue the deduplication id is the event's request id.
type SQS struct {
	client   *sqs.Client
	queueURL string
	fifo     bool
	group    *destination.Template
	payload  Payload
	timeout  time.Duration
}

var _ Integration = (*SQS)(nil)

// NewSQS returns an integration sending to queueURL through the service o
// locates. group, which may be nil on a standard queue, is the message
// group id; timeout bounds one call, zero meaning no bound beyond the
// caller's context.
func NewSQS(o AWSOptions, queueURL string, group *destination.Template, p Payload, timeout time.Duration) *SQS {
	c := sqs.New(sqs.Options{
		Region:       o.region(),
		BaseEndpoint: o.endpoint(),
		Credentials:  o.credentials(),
		HTTPClient:   o.client(),
		Retryer:      aws.NopRetryer{},
	})
	return &SQS{client: c, queueURL: queueURL, fifo: strings.HasSuffix(queueURL, ".fifo"), group: group, payload: p, timeout: timeout}
}

// Invoke implements Integration.
func (q *SQS) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	body, b64, err := textPayload(q.payload, ev)
	if err != nil {
		return nil, failf("%v", err)
	}
	in := &sqs.SendMessageInput{
		QueueUrl:    aws.String(q.queueURL),
		MessageBody: aws.String(body),
		MessageAttributes: identityAttributes(ev, b64, func(v string) sqstypes.MessageAttributeValue {
			return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}),
	}
	if in.MessageGroupId, err = messageGroup(q.group, ev); err != nil {
		return nil, err
	}
	if q.fifo {
		in.MessageDeduplicationId = aws.String(ev.RequestContext.RequestID)
	}
	callCtx, cancel := bound(ctx, q.timeout)
	defer cancel()
	out, err := q.client.SendMessage(callCtx, in)
	if err != nil {
		return nil, awsFailed(ctx, callCtx, "sqs SendMessage", q.timeout, err)
	}
	ack := &awsAccepted{RequestID: ev.RequestContext.RequestID, MessageID: aws.ToString(out.MessageId), SequenceNumber: aws.ToString(out.SequenceNumber)}
	if ack.MessageID == "" {
		return nil, failf("sqs SendMessage answered without a message id")
	}
	return ack.response(), nil
}

// SNS publishes each event to an SNS topic with Publish, acknowledged with
// the message id (and, on a FIFO topic, its sequence number). Message,
// attributes and deduplication id are as for SQS.
type SNS struct {
	client   *sns.Client
	topicARN string
	fifo     bool
	group    *destination.Template
	payload  Payload
	timeout  time.Duration
}

var _ Integration = (*SNS)(nil)

// NewSNS returns an integration publishing to topicARN through the service
// o locates; group is the message group id of a FIFO topic, nil for a
// standard one.
func NewSNS(o AWSOptions, topicARN string, group *destination.Template, p Payload, timeout time.Duration) *SNS {
	c := sns.New(sns.Options{
		Region:       o.region(),
		BaseEndpoint: o.endpoint(),
		Credentials:  o.credentials(),
		HTTPClient:   o.client(),
		Retryer:      aws.NopRetryer{},
	})
	return &SNS{client: c, topicARN: topicARN, fifo: strings.HasSuffix(topicARN, ".fifo"), group: group, payload: p, timeout: timeout}
}

// Invoke implements Integration.
func (s *SNS) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	body, b64, err := textPayload(s.payload, ev)
	if err != nil {
		return nil, failf("%v", err)
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(s.topicARN),
		Message:  aws.String(body),
		MessageAttributes: identityAttributes(ev, b64, func(v string) snstypes.MessageAttributeValue {
			return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}),
	}
	if in.MessageGroupId, err = messageGroup(s.group, ev); err != nil {
		return nil, err
	}
	if s.fifo {
		in.MessageDeduplicationId = aws.String(ev.RequestContext.RequestID)
	}
	callCtx, cancel := bound(ctx, s.timeout)
	defer cancel()
	out, err := s.client.Publish(callCtx, in)
	if err != nil {
		return nil, awsFailed(ctx, callCtx, "sns Publish", s.timeout, err)
	}
	ack := &awsAccepted{RequestID: ev.RequestContext.RequestID, MessageID: aws.ToString(out.MessageId), SequenceNumber: aws.ToString(out.SequenceNumber)}
	if ack.MessageID == "" {
		return nil, failf("sns Publish answered without a message id")
	}
	return ack.response(), nil
}

// EventBridge puts each event on an event bus with PutEvents, acknowledged
// with the event id. The event's detail is the event JSON or, with
// PayloadBody, the client's message, which must then be a JSON object.
// EventBridge events have no attributes: with PayloadBody the identity is
// not sent. Its time is the message's arrival (requestTimeEpoch).
type EventBridge struct {
	client     *eventbridge.Client
	bus        string
	source     string
	detailType *destination.Template
	payload    Payload
	timeout    time.Duration
}

var _ Integration = (*EventBridge)(nil)

// NewEventBridge returns an integration putting events from source on bus
// through the service o locates; detailType gives each event's
// detail-type.
func NewEventBridge(o AWSOptions, bus, source string, detailType *destination.Template, p Payload, timeout time.Duration) *EventBridge {
	c := eventbridge.New(eventbridge.Options{
		Region:       o.region(),
		BaseEndpoint: o.endpoint(),
		Credentials:  o.credentials(),
		HTTPClient:   o.client(),
		Retryer:      aws.NopRetryer{},
	})
	return &EventBridge{client: c, bus: bus, source: source, detailType: detailType, payload: p, timeout: timeout}
}

// Invoke implements Integration.
func (e *EventBridge) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	var detail string
	if e.payload == PayloadEvent {
		b, err := encodeEvent(ev)
		if err != nil {
			return nil, failf("%v", err)
		}
		detail = string(b)
	} else {
		b := bytes.TrimSpace([]byte(ev.Body))
		if ev.IsBase64Encoded || len(b) == 0 || b[0] != '{' || !json.Valid(b) || !utf8.Valid(b) {
			return nil, failf("eventbridge: the message is not a JSON object, which an event's detail must be")
		}
		detail = string(b)
	}
	detailType, err := expand(e.detailType, ev, nil)
	if err != nil {
		return nil, err
	}
	entry := ebtypes.PutEventsRequestEntry{
		EventBusName: aws.String(e.bus),
		Source:       aws.String(e.source),
		DetailType:   aws.String(detailType),
		Detail:       aws.String(detail),
	}
	if ms := ev.RequestContext.RequestTimeEpoch; ms > 0 {
		entry.Time = aws.Time(time.UnixMilli(ms).UTC())
	}
	callCtx, cancel := bound(ctx, e.timeout)
	defer cancel()
	out, err := e.client.PutEvents(callCtx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{entry}})
	if err != nil {
		return nil, awsFailed(ctx, callCtx, "eventbridge PutEvents", e.timeout, err)
	}
	if out.FailedEntryCount > 0 || len(out.Entries) != 1 || aws.ToString(out.Entries[0].EventId) == "" {
		code, msg := "", ""
		if len(out.Entries) > 0 {
			code, msg = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		return nil, failf("eventbridge PutEvents failed the entry: %s %s", code, msg)
	}
	ack := &awsAccepted{RequestID: ev.RequestContext.RequestID, EventID: aws.ToString(out.Entries[0].EventId)}
	return ack.response(), nil
}
