// Command llama is the Llama Stack server as one static binary:
// `llama stack run ./config.yaml` serves the OpenAI-compatible and Llama
// Stack APIs in front of the providers the config names.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/llama-stack-go/llama-stack-go/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
