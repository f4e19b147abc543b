// Package config reads the server's YAML run configuration, the format of the
// Python Llama Stack server (now OGX) that this server replaces.
//
// Loading happens in fixed steps (Parse):
//
//  1. The bytes are parsed into a yaml.Node tree. Exactly one YAML document with
//     a mapping at the top is accepted.
//  2. ${env.NAME} references are expanded in scalar nodes only, so an
//     environment value can never change the structure of the document. The
//     syntax and its semantics are those of OGX's replace_env_vars
//     (src/ogx/core/stack.py): ${env.NAME}, ${env.NAME:=default} and
//     ${env.NAME:+value}; a set-but-empty variable counts as unset; a leading
//     "~" in a substituted value is expanded with $HOME; and a scalar that an
//     expansion changed gets the type OGX would give it (null for "", bool,
//     integer, float, else string), provided YAML reads the text the same
//     way; otherwise it stays a string, so substituted text is never altered.
//  3. The tree is checked against the Go types below (unknown keys, wrong
//     types, duplicate keys), then decoded. Defaults (DefaultServer, the
//     per-provider defaults) are values set before decoding. Each enabled
//     provider's config: block is re-encoded and decoded with a fresh strict
//     decoder into the struct its provider_type selects (ProviderTypes).
//  4. Validate reports every remaining problem with its YAML path and line.
//
// Every problem is a *FieldError; Parse and Validate return all of them joined
// with errors.Join. The package keeps no state, opens no sockets and does not
// log: things a caller may want to log, such as models dropped because their
// provider is disabled, are returned instead (Config.DroppedModels).
package config
