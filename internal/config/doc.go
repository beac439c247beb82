// Package config defines the wsgate configuration file: its schema, its
// defaults, a strict YAML loader and validation.
//
// A configuration is one plain [Config] struct. A zero field means "use the
// default"; each field's comment states that default, and [Config.FillDefaults]
// is the single place where defaults are applied. [Load] and [Parse] decode a
// YAML document strictly: an unknown key, a duplicate key, a value of the wrong
// type or a second document in the file is an error that names the file and
// line. They then fill the defaults and run [Config.Validate], which reports
// every problem at once (joined with errors.Join), each as an [*Error] printed
// as "FILE:LINE: dotted.path: message" so a user can go straight to the line to
// change.
//
// The loader records the line of every key it decodes. Packages that check
// parts of the configuration themselves, such as the route selection
// expression, use [Config.Position] or [Config.Errorf] to report their
// problems in the same form.
//
// Secrets are never held in a Config. The management API's bearer tokens are
// named by an environment variable or a file and read by
// [ManagementAuth.Tokens] when the server starts.
//
// [Default] returns the embedded default configuration ([DefaultYAML]), which
// is also the documentation of every key.
package config
