// Package cfntemplate reads an AWS CloudFormation or SAM template that
// describes an API Gateway WebSocket API and turns it into wsgate
// configuration.
//
// [Load] parses the template (YAML or JSON, with the short-form tags such as
// !Ref and !Sub), resolves its parameters, conditions, mappings, SAM globals,
// pseudo parameters and intrinsic functions, and maps its resources onto the
// keys of [config.Config] that a template owns: stage, api_id, domain_name,
// route_selection_expression, stage_variables, authorizer, routes and
// throttling (the stage's DefaultRouteSettings and RouteSettings). Lambda
// functions become local functions (lambda.build for a Go package
// directory, lambda.command for a directory holding a bootstrap executable).
//
// A resource that has no meaning for wsgate (IAM roles, permissions, tables)
// is never skipped silently: it is listed in [Result.Ignored] with the reason.
// A piece of the template that wsgate cannot honour — an intrinsic it cannot
// resolve, a property it does not support — is an error naming the template
// file, line and property path (Resources.X.Properties.Y). Load returns every
// problem at once, joined with errors.Join, each a *config.Error.
//
// [Merge] combines the result with a wsgate configuration file that supplies
// what a template cannot say (listeners, management API, registry, limits),
// and [Result.YAML] writes the whole configuration as one wsgate YAML file.
package cfntemplate
