package gateway

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// discoveryTimeout bounds one listing of a provider's models.
const discoveryTimeout = 30 * time.Second

// discoverer lists one provider's models into the registry.
type discoverer struct {
	providerID string
	lister     provider.ModelLister
	allowed    []string // empty allows every model
	refresh    bool     // list again every interval, not just at start
}

// Discover lists the models of every provider that can list them and
// registers them as "<provider_id>/<model>", once. Failures are logged and
// never stop the server.
func (g *Gateway) Discover(ctx context.Context) {
	for _, d := range g.discoverers {
		g.discoverOne(ctx, d)
	}
}

// runDiscovery discovers at start and then, for providers that ask for
// it, every interval until ctx ends.
func (g *Gateway) runDiscovery(ctx context.Context) {
	if len(g.discoverers) == 0 {
		return
	}
	g.Discover(ctx)
	var refresh []discoverer
	for _, d := range g.discoverers {
		if d.refresh {
			refresh = append(refresh, d)
		}
	}
	if len(refresh) == 0 {
		return
	}
	t := time.NewTicker(g.refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, d := range refresh {
				g.discoverOne(ctx, d)
			}
		}
	}
}

func (g *Gateway) discoverOne(parent context.Context, d discoverer) {
	ctx, cancel := context.WithTimeout(parent, discoveryTimeout)
	defer cancel()
	listed, err := d.lister.ListModels(ctx)
	if err != nil {
		if !errors.Is(err, provider.ErrUnsupported) && parent.Err() == nil {
			g.log.Warn("model discovery failed; the provider's registered models are still served",
				slog.String("provider_id", d.providerID), slog.String("error", err.Error()))
		}
		return
	}
	models := make([]registry.Model, 0, len(listed))
	for _, m := range listed {
		if m.ID == "" || (len(d.allowed) > 0 && !slices.Contains(d.allowed, m.ID)) {
			continue
		}
		mt := registry.TypeLLM
		if strings.Contains(strings.ToLower(m.ID), "embed") {
			mt = registry.TypeEmbedding
		}
		models = append(models, registry.Model{
			Identifier:         d.providerID + "/" + m.ID,
			ProviderResourceID: m.ID,
			ModelType:          mt,
		})
	}
	added, removed, err := g.reg.SetDiscovered(d.providerID, models)
	if err != nil {
		g.log.Warn("model discovery failed", slog.String("provider_id", d.providerID), slog.String("error", err.Error()))
		return
	}
	g.log.Info("models discovered", slog.String("provider_id", d.providerID),
		slog.Int("listed", len(listed)), slog.Int("served", len(models)), slog.Int("added", added), slog.Int("removed", removed))
}
