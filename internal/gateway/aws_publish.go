package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/destination"
	"github.com/wsgate/wsgate/internal/integration"
)

// awsIntegration builds the sqs, sns or eventbridge integration ic,
// configured at the key path, describes. Its calls go through client, the
// gateway's HTTP client, so they share its connections.
func awsIntegration(path string, ic config.Integration, client *http.Client, opts Options) (integration.Integration, error) {
	o := integration.AWSOptions{Endpoint: ic.Endpoint, Region: ic.Region, Client: client}
	if ic.Credentials == config.CredentialsEnvironment {
		if err := environmentCredentials(path, ic, &o, opts); err != nil {
			return nil, err
		}
	} else if ic.AccessKeyID != "" {
		o.Credentials = aws.Credentials{AccessKeyID: ic.AccessKeyID, SecretAccessKey: opts.Getenv(ic.SecretAccessKeyEnv)}
		if o.Credentials.SecretAccessKey == "" {
			return nil, unsetEnv(path+".secret_access_key_env", ic.SecretAccessKeyEnv)
		}
		if ic.SessionTokenEnv != "" {
			// As for a lambda integration, an unset variable means no
			// session token.
			o.Credentials.SessionToken = opts.Getenv(ic.SessionTokenEnv)
		}
	}
	var group *destination.Template
	if ic.MessageGroupID != "" {
		var err error
		if group, err = destination.Parse(ic.MessageGroupID); err != nil {
			return nil, errReported
		}
	}
	p := payload(ic.Payload)
	switch ic.Type {
	case config.IntegrationSQS:
		return integration.NewSQS(o, ic.QueueURL, group, p, ic.Timeout), nil
	case config.IntegrationSNS:
		return integration.NewSNS(o, ic.TopicARN, group, p, ic.Timeout), nil
	}
	detailType, err := destination.Parse(ic.DetailType)
	if err != nil {
		return nil, errReported
	}
	return integration.NewEventBridge(o, ic.EventBus, ic.Source, detailType, p, ic.Timeout), nil
}

// serviceEndpointVars names, by integration type, the variable the AWS SDKs
// read for that service's endpoint: AWS_ENDPOINT_URL_ followed by the
// service id, upper case.
var serviceEndpointVars = map[config.IntegrationType]string{
	config.IntegrationSQS:         "AWS_ENDPOINT_URL_SQS",
	config.IntegrationSNS:         "AWS_ENDPOINT_URL_SNS",
	config.IntegrationEventBridge: "AWS_ENDPOINT_URL_EVENTBRIDGE",
}

// environmentCredentials fills o, for an integration with credentials:
// environment, from the standard AWS variables: the keys of
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and,
// when ic sets no endpoint, the service's AWS_ENDPOINT_URL_* variable or
// AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true. An
// unset key is a problem config.IsMissing reports; the errors name
// variables, never their values.
func environmentCredentials(path string, ic config.Integration, o *integration.AWSOptions, opts Options) error {
	var errs []error
	id := strings.TrimSpace(opts.Getenv("AWS_ACCESS_KEY_ID"))
	secret := strings.TrimSpace(opts.Getenv("AWS_SECRET_ACCESS_KEY"))
	if id == "" {
		errs = append(errs, unsetEnv(path+".credentials", "AWS_ACCESS_KEY_ID"))
	}
	if secret == "" {
		errs = append(errs, unsetEnv(path+".credentials", "AWS_SECRET_ACCESS_KEY"))
	}
	o.Credentials = aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: strings.TrimSpace(opts.Getenv("AWS_SESSION_TOKEN"))}
	if ic.Endpoint == "" && !strings.EqualFold(strings.TrimSpace(opts.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")), "true") {
		for _, name := range []string{serviceEndpointVars[ic.Type], "AWS_ENDPOINT_URL"} {
			v := strings.TrimSpace(opts.Getenv(name))
			if v == "" {
				continue
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				errs = append(errs, &config.Error{Path: path + ".credentials", Msg: "environment variable " + name + " is not an http:// or https:// URL without credentials"})
			} else {
				o.Endpoint = v
			}
			break
		}
	}
	return errors.Join(errs...)
}
