module github.com/wsgate/wsgate

go 1.26

require (
	github.com/aws/aws-lambda-go v1.50.0
	github.com/coder/websocket v1.8.15
	github.com/lesismal/nbio v1.6.12
	go.uber.org/goleak v1.3.0
	gopkg.in/yaml.v3 v3.0.1
)

require github.com/kr/text v0.2.0 // indirect
