// Package model validates the messages of a route against JSON Schema
// models, as API Gateway does with a route's RequestModels and
// ModelSelectionExpression.
//
// A Schema is compiled once, when the configuration is built: draft 4 when
// the schema has no "$schema" (as AWS models are), otherwise the draft its
// "$schema" names (draft 4, 6, 7, 2019-09 or 2020-12). References to other
// documents are refused: a model is self-contained, and building a
// configuration never reaches the network or the file system through a
// schema.
//
// Validation work is bounded by the message, which the edge limits to
// limits.max_message_bytes, and by the schema, which the configuration
// fixes: the library (github.com/santhosh-tekuri/jsonschema/v6) walks the
// instance once per applicable keyword, detects $ref cycles instead of
// following them forever, and matches "pattern" with Go's regexp package,
// whose matching time is linear in the input.
package model
