// Package o365receiver implements the `o365` receiver: it polls Microsoft Graph per tenant and dataset
// and emits each Graph object, verbatim, as a log record, exactly once.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package o365receiver
