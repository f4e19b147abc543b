package auth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// Actions of access rules.
const (
	ActionCreate = config.ActionCreate
	ActionRead   = config.ActionRead
	ActionUpdate = config.ActionUpdate
	ActionDelete = config.ActionDelete
)

// A Resource is something access rules protect: a model (Type "model",
// ID the client-facing model id), a vector store, ...
type Resource struct {
	Type string
	ID   string
	// Owner is the principal that created the resource; nil for
	// resources without one, such as models registered from the config.
	Owner *Principal
}

// A Policy is an access policy (server.auth.access_policy) with OGX's
// semantics: the rules are tried in order, and the first whose scope
// matches the caller, action and resource and whose condition holds
// decides; when none does, the action is denied. Without rules the policy
// is OGX's default: permit everything on resources that are unowned, owned
// by the caller, or whose owner shares a value of roles, teams, projects or
// namespaces with the caller.
type Policy struct {
	rules []accessRule
}

type accessRule struct {
	permit    bool
	principal string
	actions   []string
	resource  string         // "" matches any
	re        *regexp.Regexp // for "regex:" resources
	when      []config.Condition
	unless    []config.Condition
}

// NewPolicy compiles rules; nil or empty rules give the default policy.
func NewPolicy(rules []config.AccessRule) (*Policy, error) {
	if len(rules) == 0 {
		return &Policy{rules: defaultRules()}, nil
	}
	p := &Policy{}
	for i, r := range rules {
		scope, permit := r.Permit, true
		if scope == nil {
			scope, permit = r.Forbid, false
		}
		if scope == nil || r.Permit != nil && r.Forbid != nil {
			return nil, fmt.Errorf("access_policy[%d]: exactly one of permit or forbid is required", i)
		}
		ar := accessRule{permit: permit, principal: scope.Principal, actions: slices.Clone([]string(scope.Actions)), resource: scope.Resource}
		if expr, ok := strings.CutPrefix(scope.Resource, config.RegexPrefix); ok {
			re, err := config.CompilePattern(expr)
			if err != nil {
				return nil, fmt.Errorf("access_policy[%d].resource: %w", i, err)
			}
			ar.re = re
		}
		var err error
		if ar.when, err = config.ParseConditions(r.When); err != nil {
			return nil, fmt.Errorf("access_policy[%d].when: %w", i, err)
		}
		if ar.unless, err = config.ParseConditions(r.Unless); err != nil {
			return nil, fmt.Errorf("access_policy[%d].unless: %w", i, err)
		}
		p.rules = append(p.rules, ar)
	}
	return p, nil
}

// ownerAttributes are the attributes the default policy compares.
var ownerAttributes = []string{"namespaces", "projects", "roles", "teams"}

func defaultRules() []accessRule {
	all := []string{ActionCreate, ActionRead, ActionUpdate, ActionDelete}
	var rules []accessRule
	for _, name := range ownerAttributes {
		rules = append(rules, accessRule{permit: true, actions: all, when: []config.Condition{{Kind: config.CondUserInOwners, Name: name}}})
	}
	return append(rules,
		accessRule{permit: true, actions: all, when: []config.Condition{{Kind: config.CondUserIsOwner}}},
		accessRule{permit: true, actions: all, when: []config.Condition{{Kind: config.CondResourceIsUnowned}}},
	)
}

// defaultPolicy is what a nil *Policy applies.
var defaultPolicy = &Policy{rules: defaultRules()}

// Allowed reports whether p may perform action on res. A nil p (no
// authentication configured) may do anything, as in OGX. A nil pol is the
// default policy.
func (pol *Policy) Allowed(p *Principal, action string, res Resource) bool {
	if p == nil {
		return true
	}
	if pol == nil {
		pol = defaultPolicy
	}
	qualified := res.Type + "::" + res.ID
	for i := range pol.rules {
		r := &pol.rules[i]
		if !r.matches(p, action, qualified) {
			continue
		}
		switch {
		case len(r.when) > 0:
			if !allHold(r.when, p, &res) {
				continue
			}
		case len(r.unless) > 0:
			if allHold(r.unless, p, &res) {
				continue
			}
		}
		return r.permit
	}
	return false
}

// matches reports whether the rule's scope covers the request.
func (r *accessRule) matches(p *Principal, action, qualified string) bool {
	if r.resource != "" {
		switch {
		case r.re != nil:
			if !r.re.MatchString(qualified) {
				return false
			}
		case r.resource == qualified:
		case strings.HasSuffix(r.resource, "::*") && strings.HasPrefix(qualified, strings.TrimSuffix(r.resource, "*")):
		default:
			return false
		}
	}
	if r.principal != "" && r.principal != p.ID {
		return false
	}
	return slices.Contains(r.actions, action)
}

// allHold reports whether every condition holds.
func allHold(conds []config.Condition, p *Principal, res *Resource) bool {
	for _, c := range conds {
		if !holds(c, p, res) {
			return false
		}
	}
	return true
}

// holds evaluates one condition as OGX does.
func holds(c config.Condition, p *Principal, res *Resource) bool {
	switch c.Kind {
	case config.CondUserIsOwner:
		return res.Owner != nil && res.Owner.ID == p.ID
	case config.CondUserIsNotOwner:
		return res.Owner == nil || res.Owner.ID != p.ID
	case config.CondUserWithValueInList:
		return slices.Contains(p.Attributes[c.Name], c.Value)
	case config.CondUserWithValueNotInList:
		return !slices.Contains(p.Attributes[c.Name], c.Value)
	case config.CondUserInOwners:
		return inOwners(c.Name, p, res)
	case config.CondUserNotInOwners:
		return !inOwners(c.Name, p, res)
	case config.CondResourceIsUnowned:
		return res.Owner == nil
	}
	return false
}

// inOwners reports whether p shares a value of attribute name with the
// resource's owner.
func inOwners(name string, p *Principal, res *Resource) bool {
	if res.Owner == nil {
		return false
	}
	for _, v := range res.Owner.Attributes[name] {
		if slices.Contains(p.Attributes[name], v) {
			return true
		}
	}
	return false
}

// A RoutePolicy is a route policy (server.auth.route_policy) with OGX's
// semantics: with no rules every route is allowed; otherwise the first
// rule whose paths match the route and whose condition holds decides, and
// when none does, the route is denied. A rule with a condition never
// matches an anonymous caller.
type RoutePolicy struct {
	rules []routeRule
}

type routeRule struct {
	permit bool
	paths  []routePattern
	when   []config.Condition
	unless []config.Condition
}

type routePattern struct {
	text string
	re   *regexp.Regexp
}

// NewRoutePolicy compiles rules; nil or empty rules give a policy that
// allows every route.
func NewRoutePolicy(rules []config.RouteRule) (*RoutePolicy, error) {
	p := &RoutePolicy{}
	for i, r := range rules {
		scope, permit := r.Permit, true
		if scope == nil {
			scope, permit = r.Forbid, false
		}
		if scope == nil || r.Permit != nil && r.Forbid != nil {
			return nil, fmt.Errorf("route_policy[%d]: exactly one of permit or forbid is required", i)
		}
		rr := routeRule{permit: permit}
		for _, pat := range scope.Paths {
			rp := routePattern{text: pat}
			if expr, ok := strings.CutPrefix(pat, config.RegexPrefix); ok {
				re, err := config.CompilePattern(expr)
				if err != nil {
					return nil, fmt.Errorf("route_policy[%d].paths: %w", i, err)
				}
				rp.re = re
			}
			rr.paths = append(rr.paths, rp)
		}
		var err error
		if rr.when, err = config.ParseConditions(r.When); err != nil {
			return nil, fmt.Errorf("route_policy[%d].when: %w", i, err)
		}
		if rr.unless, err = config.ParseConditions(r.Unless); err != nil {
			return nil, fmt.Errorf("route_policy[%d].unless: %w", i, err)
		}
		p.rules = append(p.rules, rr)
	}
	return p, nil
}

// Empty reports whether the policy has no rules (and so allows all).
func (rp *RoutePolicy) Empty() bool { return rp == nil || len(rp.rules) == 0 }

// Allowed reports whether p (nil for anonymous) may call path. Trailing
// slashes of path are ignored.
func (rp *RoutePolicy) Allowed(p *Principal, path string) bool {
	if rp.Empty() {
		return true
	}
	path = normalizeRoute(path)
	route := Resource{Type: "route", ID: "route"}
	for i := range rp.rules {
		r := &rp.rules[i]
		if !r.matchesPath(path) {
			continue
		}
		if len(r.when) > 0 || len(r.unless) > 0 {
			if p == nil {
				continue
			}
			if len(r.when) > 0 && !allHold(r.when, p, &route) {
				continue
			}
			if len(r.unless) > 0 && anyHolds(r.unless, p, &route) {
				continue
			}
		}
		return r.permit
	}
	return false
}

// normalizeRoute removes trailing slashes, except from "/".
func normalizeRoute(path string) string {
	if path != "/" {
		path = strings.TrimRight(path, "/")
	}
	return path
}

func (r *routeRule) matchesPath(path string) bool {
	for _, pat := range r.paths {
		switch {
		case pat.text == "*":
			return true
		case pat.re != nil:
			if pat.re.MatchString(path) {
				return true
			}
		case strings.HasSuffix(pat.text, "*"):
			if strings.HasPrefix(path, strings.TrimSuffix(pat.text, "*")) {
				return true
			}
		case pat.text == path:
			return true
		}
	}
	return false
}

func anyHolds(conds []config.Condition, p *Principal, res *Resource) bool {
	for _, c := range conds {
		if holds(c, p, res) {
			return true
		}
	}
	return false
}
