package cfntemplate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// awsRoute is base with a route "r" on an AWS integration of the service
// URI tail uri, with the request parameters params (YAML flow mapping) and
// the $default request template tmpl.
func awsRoute(uri, params, tmpl string) string {
	return base + `  R:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: r, Target: !Join [/, [integrations, !Ref I]]}
  I:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS
      IntegrationMethod: POST
      IntegrationUri: !Sub 'arn:aws:apigateway:${AWS::Region}:` + uri + `'
      CredentialsArn: arn:aws:iam::000000000000:role/apigw
      PassthroughBehavior: NEVER
      TemplateSelectionExpression: \$default
      RequestParameters: ` + params + `
      RequestTemplates:
        $default: '` + strings.ReplaceAll(tmpl, "'", "''") + `'
`
}

// TestAWSServiceIntegrations maps the request templates AWS documents for
// SQS, SNS and EventBridge to wsgate's integrations.
func TestAWSServiceIntegrations(t *testing.T) {
	const form = `{integration.request.header.Content-Type: "'application/x-www-form-urlencoded'"}`
	tests := []struct {
		name, uri, params, tmpl string
		want                    config.Integration
	}{
		{"sqs body", "sqs:path/${AWS::AccountId}/chat", form, "Action=SendMessage&MessageBody=$input.body",
			config.Integration{Type: config.IntegrationSQS, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/chat"}},
		{"sqs urlEncode", "sqs:path/123456789012/chat", form, "Action=SendMessage&MessageBody=$util.urlEncode($input.body)",
			config.Integration{Type: config.IntegrationSQS, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/chat"}},
		{"sqs json", "sqs:path/123456789012/chat", form, "Action=SendMessage&MessageBody=$input.json('$')&Version=2012-11-05",
			config.Integration{Type: config.IntegrationSQS, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/chat"}},
		{"sqs fifo static group", "sqs:path/123456789012/chat.fifo", form, "Action=SendMessage&MessageGroupId=room%7B1%7D&MessageDeduplicationId=$context.requestId&MessageBody=$input.body",
			config.Integration{Type: config.IntegrationSQS, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/chat.fifo", MessageGroupID: "room{{1}}"}},
		{"sqs fifo group of the caller", "sqs:path/123456789012/chat.fifo", form, "Action=SendMessage&MessageGroupId=t-$context.authorizer.tenant-${context.authorizer.principalId}&MessageBody=$input.body",
			config.Integration{Type: config.IntegrationSQS, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/chat.fifo", MessageGroupID: "t-{authorizer.tenant}-{principalId}"}},
		{"sns action, topic in the template", "sns:action/Publish", form, "TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3Anews&Message=$input.body",
			config.Integration{Type: config.IntegrationSNS, TopicARN: "arn:aws:sns:eu-west-1:123456789012:news"}},
		{"sns path, topic in the query", "sns:path//", `{integration.request.header.Content-Type: "'application/x-www-form-urlencoded'", integration.request.querystring.TopicArn: "'arn:aws:sns:eu-west-1:123456789012:news'"}`,
			"Action=Publish&Message=$util.urlEncode($input.body)",
			config.Integration{Type: config.IntegrationSNS, TopicARN: "arn:aws:sns:eu-west-1:123456789012:news"}},
		{"sns urlEncode of a literal", "sns:action/Publish", form, "TopicArn=$util.urlEncode('arn:aws:sns:eu-west-1:123456789012:news.fifo')&Message=$input.body&MessageGroupId=$context.connectionId",
			config.Integration{Type: config.IntegrationSNS, TopicARN: "arn:aws:sns:eu-west-1:123456789012:news.fifo", MessageGroupID: "{connectionId}"}},
		{"eventbridge action", "events:action/PutEvents", `{}`,
			`{"Entries":[{"Source":"com.example.chat","DetailType":"message","Detail":"$util.escapeJavaScript($input.body)","EventBusName":"chat"}]}`,
			config.Integration{Type: config.IntegrationEventBridge, Source: "com.example.chat", DetailType: "message", EventBus: "chat"}},
		{"eventbridge target header", "events:path//", `{integration.request.header.X-Amz-Target: "'AWSEvents.PutEvents'", integration.request.header.Content-Type: "'application/x-amz-json-1.1'"}`,
			"{\n  \"Entries\": [{\"Detail\": \"$input.body\", \"DetailType\": \"{type}\", \"Source\": \"chat\"}]\n}",
			config.Integration{Type: config.IntegrationEventBridge, Source: "chat", DetailType: "{{type}}"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustLoad(t, awsRoute(tc.uri, tc.params, tc.tmpl), Options{Region: "eu-west-1", AccountID: "123456789012"})
			got := r.Config.Routes["r"].Integration
			want := tc.want
			want.Region, want.Credentials, want.Payload = "eu-west-1", config.CredentialsEnvironment, config.PayloadBody
			if got.Type != want.Type || got.Region != want.Region || got.Credentials != want.Credentials || got.Payload != want.Payload ||
				got.QueueURL != want.QueueURL || got.TopicARN != want.TopicARN || got.MessageGroupID != want.MessageGroupID ||
				got.Source != want.Source || got.DetailType != want.DetailType || got.EventBus != want.EventBus {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			ignored := false
			for _, i := range r.Ignored {
				ignored = ignored || i.LogicalID == "I" && i.Property == "CredentialsArn" && strings.Contains(i.Reason, "AWS_ACCESS_KEY_ID")
			}
			if !ignored {
				t.Errorf("CredentialsArn not listed as ignored: %v", r.Ignored)
			}
			if _, err := Merge(nil, r); err != nil {
				t.Errorf("Merge: %v", err)
			}
		})
	}
}

// TestAWSTemplateServed serves a template whose route sends to SQS through
// an AWS integration: with the credentials and AWS_ENDPOINT_URL_SQS of the
// environment, a client's message lands in the queue, signed, and the
// client gets wsgate's acknowledgement.
func TestAWSTemplateServed(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIAWSGATETEMPLATE01", SecretAccessKey: "template-secret/0123456789"}
	sqs := servicetest.AWS(t, creds, "us-east-1")
	r, err := Load("testdata/awsservices/template.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Merge(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	g := gt.StartConfigEnv(t, cfg, map[string]string{
		"AWS_ACCESS_KEY_ID":     creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
		"AWS_ENDPOINT_URL_SQS":  sqs.URL,
	})
	c := gt.Dial(t, g.URL, nil)
	msg := `{"action":"order","item":"tea & cake"}`
	c.Send(msg)
	var ack struct{ Status, RequestID, MessageID, SequenceNumber string }
	if raw := c.NextText(); json.Unmarshal([]byte(raw), &ack) != nil || ack.Status != "accepted" || ack.MessageID == "" {
		t.Fatalf("reply %s", raw)
	}
	reqs := sqs.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	j := reqs[0].JSON
	if j["QueueUrl"] != "https://sqs.us-east-1.amazonaws.com/000000000000/orders.fifo" || j["MessageBody"] != msg ||
		j["MessageDeduplicationId"] != ack.RequestID || j["MessageGroupId"] == "" || j["MessageGroupId"] == nil {
		t.Errorf("SendMessage %v", j)
	}

	// A route without a route response sends and answers nothing.
	c.Send(`{"action":"send","text":"hi"}`)
	gt.Eventually(t, func() bool { return len(sqs.Requests()) == 2 }, "second message sent")
	if j := sqs.Requests()[1].JSON; j["QueueUrl"] != "https://sqs.us-east-1.amazonaws.com/000000000000/messages" || j["MessageBody"] != `{"action":"send","text":"hi"}` {
		t.Errorf("SendMessage %v", j)
	}
}

// TestAWSServiceOnConnect: $connect carries no message, which SQS refuses,
// so an SQS AWS integration there is refused at the template's line.
func TestAWSServiceOnConnect(t *testing.T) {
	text := strings.Replace(awsRoute("sqs:path/123456789012/q", `{integration.request.header.Content-Type: "'application/x-www-form-urlencoded'"}`,
		"Action=SendMessage&MessageBody=$input.body"), "RouteKey: r,", "RouteKey: $connect,", 1)
	_, err := Load(writeTemplate(t, text), Options{})
	if err == nil || !strings.Contains(err.Error(), "template.yaml:38: routes.$connect.integration.payload: $connect and $disconnect carry no message") {
		t.Fatalf("err = %v", err)
	}
}
