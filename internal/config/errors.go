package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A FieldError is one problem found in a configuration: where it is and what
// is wrong. Its text reads "file:line: path: problem", leaving out the parts
// that are not known.
type FieldError struct {
	File string // config file name, set by Load
	Line int    // 1-based line in the file, 0 when not known
	Path string // YAML path of the offending value, e.g. "providers.inference[0].config.region_name"
	Err  error  // the problem
}

// Error implements error.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// An EnvError reports a ${env.NAME} reference (without := or :+) to an
// environment variable that is unset or set to the empty string.
type EnvError struct {
	Name string // the variable
}

// Error implements error.
func (e *EnvError) Error() string {
	return fmt.Sprintf("environment variable %s is not set or is empty (write ${env.%s:=default} to give a default)", e.Name, e.Name)
}

// problems collects FieldErrors.
type problems struct {
	list []*FieldError
}

// add records err at path; n, when not nil, gives the line.
func (p *problems) add(n *yaml.Node, path string, err error) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.list = append(p.list, &FieldError{Line: line, Path: path, Err: err})
}

// addf records a formatted problem at path.
func (p *problems) addf(n *yaml.Node, path, format string, args ...any) {
	p.add(n, path, fmt.Errorf(format, args...))
}

// addLine records err at path and line.
func (p *problems) addLine(line int, path string, err error) {
	p.list = append(p.list, &FieldError{Line: line, Path: path, Err: err})
}

// covers reports whether a problem is already recorded at path or at a path
// that contains it (so a value with a type error is not also reported as,
// say, out of range).
func (p *problems) covers(path string) bool {
	for _, e := range p.list {
		if e.Path == "" {
			continue
		}
		if path == e.Path || strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(path, e.Path+"[") {
			return true
		}
	}
	return false
}

// merge appends the problems of q that p does not already cover.
func (p *problems) merge(q *problems) {
	for _, e := range q.list {
		if e.Path != "" && p.covers(e.Path) {
			continue
		}
		p.list = append(p.list, e)
	}
}

// err returns the problems, ordered by line, as one error, or nil.
func (p *problems) err(file string) error {
	if len(p.list) == 0 {
		return nil
	}
	list := make([]*FieldError, len(p.list))
	copy(list, p.list)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Line < list[j].Line })
	errs := make([]error, len(list))
	for i, e := range list {
		c := *e
		c.File = file
		errs[i] = &c
	}
	return errors.Join(errs...)
}
