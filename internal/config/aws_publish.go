package config

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/wsgate/wsgate/internal/destination"
)

// The AWS publishing integration types: like nats and redis they hand each
// event to a service and answer once it has acknowledged it.
const (
	// IntegrationSQS sends each event to an SQS queue (SendMessage).
	IntegrationSQS IntegrationType = "sqs"
	// IntegrationSNS publishes each event to an SNS topic (Publish).
	IntegrationSNS IntegrationType = "sns"
	// IntegrationEventBridge puts each event on an EventBridge event bus
	// (PutEvents).
	IntegrationEventBridge IntegrationType = "eventbridge"
)

// CredentialsEnvironment is the value of an AWS integration's credentials
// key that takes credentials and endpoints from the standard AWS
// environment variables.
const CredentialsEnvironment = "environment"

// awsTypes are the AWS publishing integration types.
var awsTypes = []IntegrationType{IntegrationSQS, IntegrationSNS, IntegrationEventBridge}

func isAWSPublish(t IntegrationType) bool {
	return t == IntegrationSQS || t == IntegrationSNS || t == IntegrationEventBridge
}

var (
	// regionPattern is what an AWS region name looks like.
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// queuePathPattern is the path of an SQS queue URL: /ACCOUNT/NAME.
	queuePathPattern = regexp.MustCompile(`^/[0-9]{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$`)
	// topicARNPattern is an SNS topic ARN.
	topicARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
	// eventBusPattern is an event bus name, or the ARN of one.
	eventBusPattern = regexp.MustCompile(`^([A-Za-z0-9._/-]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256})$`)
)

// groupChars reports whether s holds only the characters SQS and SNS allow
// in a message group id: letters, digits and ASCII punctuation.
func groupChars(s string) bool {
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func (in *Integration) fillAWSDefaults() {
	setDefault(&in.Region, "us-east-1")
	setDefault(&in.Payload, PayloadEvent)
	if in.Type == IntegrationEventBridge {
		setDefault(&in.EventBus, "default")
		setDefault(&in.DetailType, "{routeKey}")
	}
}

// awsPublish checks the keys of an sqs, sns or eventbridge integration.
func (k *checker) awsPublish(path string, in Integration) {
	if in.Endpoint != "" {
		if u, err := url.Parse(in.Endpoint); err != nil || !isHTTPURL(in.Endpoint) {
			k.add(path+".endpoint", "%s must be an absolute http:// or https:// URL", showURL(in.Endpoint))
		} else if u.User != nil {
			k.add(path+".endpoint", "holds credentials; sign with access_key_id and secret_access_key_env instead")
		}
	}
	if !regionPattern.MatchString(in.Region) {
		k.add(path+".region", "%q is not an AWS region name such as us-east-1", in.Region)
	}
	switch {
	case in.Credentials != "" && in.Credentials != CredentialsEnvironment:
		k.add(path+".credentials", "%q: the only value is %s", in.Credentials, CredentialsEnvironment)
	case in.Credentials != "" && (in.AccessKeyID != "" || in.SecretAccessKeyEnv != "" || in.SessionTokenEnv != ""):
		k.add(path+".credentials", "%s takes the keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; drop access_key_id, secret_access_key_env and session_token_env, or this key", in.Credentials)
	case in.Credentials != "":
	case (in.AccessKeyID == "") != (in.SecretAccessKeyEnv == ""):
		k.add(path, "set both access_key_id and secret_access_key_env, or neither")
	case in.AccessKeyID == "" && in.Endpoint == "":
		k.add(path+".access_key_id", "required to reach AWS, which refuses unsigned requests (with secret_access_key_env, or credentials: environment for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); only a local endpoint may take unsigned ones")
	}
	if in.AccessKeyID != "" && !accessKeyPattern.MatchString(in.AccessKeyID) {
		k.add(path+".access_key_id", "does not look like an AWS access key id (16+ upper-case letters and digits)")
	}
	k.envName(path+".secret_access_key_env", in.SecretAccessKeyEnv)
	k.envName(path+".session_token_env", in.SessionTokenEnv)
	if in.SessionTokenEnv != "" && in.AccessKeyID == "" && in.Credentials == "" {
		k.add(path+".session_token_env", "only with access_key_id and secret_access_key_env")
	}
	switch in.Type {
	case IntegrationSQS:
		fifo := false
		switch u, err := url.Parse(in.QueueURL); {
		case in.QueueURL == "":
			k.add(path+".queue_url", "required for sqs integrations, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/orders")
		case strings.ContainsAny(in.QueueURL, "{}"):
			k.add(path+".queue_url", "placeholders are not supported here; a route sends to one queue")
		case err != nil || !isHTTPURL(in.QueueURL) || u.User != nil || u.RawQuery != "" || !queuePathPattern.MatchString(u.Path):
			k.add(path+".queue_url", "%s is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/orders", showURL(in.QueueURL))
		default:
			fifo = strings.HasSuffix(u.Path, ".fifo")
		}
		k.messageGroup(path, in.MessageGroupID, fifo, true, "queue")
	case IntegrationSNS:
		fifo := false
		switch {
		case in.TopicARN == "":
			k.add(path+".topic_arn", "required for sns integrations, e.g. arn:aws:sns:us-east-1:123456789012:orders")
		case !topicARNPattern.MatchString(in.TopicARN):
			k.add(path+".topic_arn", "%q is not a topic ARN such as arn:aws:sns:us-east-1:123456789012:orders (no placeholders)", in.TopicARN)
		default:
			fifo = strings.HasSuffix(in.TopicARN, ".fifo")
		}
		k.messageGroup(path, in.MessageGroupID, fifo, false, "topic")
	case IntegrationEventBridge:
		if !eventBusPattern.MatchString(in.EventBus) {
			k.add(path+".event_bus", "%q is not an event bus name or ARN (no placeholders)", in.EventBus)
		}
		switch {
		case in.Source == "":
			k.add(path+".source", "required for eventbridge integrations, e.g. wsgate")
		case strings.HasPrefix(strings.ToLower(in.Source), "aws."):
			k.add(path+".source", "%q: sources starting with aws. are reserved for AWS services", in.Source)
		case len(in.Source) > 256 || !groupChars(in.Source):
			k.add(path+".source", "%q must be 1 to 256 characters without spaces or control characters", in.Source)
		}
		if t, err := destination.Parse(in.DetailType); err != nil {
			k.add(path+".detail_type", "%v", err)
		} else if len(t.Mask("")) > 128 {
			k.add(path+".detail_type", "is longer than 128 characters")
		}
	}
	if in.Payload == PayloadBody && in.Type != IntegrationEventBridge &&
		(strings.HasPrefix(path, "routes."+RouteConnect+".") || strings.HasPrefix(path, "routes."+RouteDisconnect+".")) {
		k.add(path+".payload", "%s and %s carry no message, and %s refuses an empty one; use payload: event", RouteConnect, RouteDisconnect, strings.ToUpper(string(in.Type)))
	}
	k.payload(path, in.Payload)
}

// messageGroup checks the message_group_id of an sqs or sns integration
// sending to a FIFO queue or topic or, when fifo is false, to a standard
// one: SQS takes a group there too (fair queues), SNS does not.
func (k *checker) messageGroup(path, group string, fifo, standardTakesGroup bool, what string) {
	p := path + ".message_group_id"
	switch {
	case group == "" && fifo:
		k.add(p, "required for a FIFO %s, e.g. {principalId}", what)
		return
	case group == "":
		return
	case !fifo && !standardTakesGroup:
		k.add(p, "only for a FIFO %s (its name ends in .fifo)", what)
		return
	}
	t, err := destination.Parse(group)
	if err != nil {
		k.add(p, "%v", err)
		return
	}
	if lit := t.Mask(""); len(lit) > 128 || !groupChars(lit) {
		k.add(p, "must be at most 128 letters, digits and punctuation marks")
	}
}
