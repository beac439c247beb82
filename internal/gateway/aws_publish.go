package gateway

import (
	"net/http"

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
	if ic.AccessKeyID != "" {
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
