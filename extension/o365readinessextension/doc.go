// Package o365readinessextension implements the `o365_readiness` extension: an HTTP API (and a small
// status page) that tells, per tenant and dataset of every running `o365` receiver, whether collection
// works and what exactly is missing — credential, token, application permission, licence, throttling,
// lag — and lets an operator ask for a poll now. Receivers register with it through the explicit
// interface of internal/o365status; nothing is shared through global state.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package o365readinessextension
