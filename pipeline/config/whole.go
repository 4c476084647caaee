package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// CheckWholeNumbers reports a number with a fraction given for an integer field of v (e.g.
// batch.size: 25.6), naming the file, line and key: the YAML decoder would truncate it without
// a word. Types that decode themselves (UnmarshalYAML) check their own values; with file ""
// (such a type checking its own node) the error names no file or line.
func CheckWholeNumbers(file string, node ast.Node, v any) error {
	if node == nil {
		return nil
	}
	prefix, _ := strings.CutPrefix(node.GetPath(), "$") // "$.batch" for the batch block
	return checkWhole(file, strings.TrimPrefix(prefix, "."), node, reflect.TypeOf(v))
}

var (
	bytesUnmarshaler     = reflect.TypeFor[yaml.BytesUnmarshaler]()
	interfaceUnmarshaler = reflect.TypeFor[yaml.InterfaceUnmarshaler]()
)

func checkWhole(file, key string, node ast.Node, t reflect.Type) error {
	for {
		switch n := node.(type) {
		case *ast.AnchorNode:
			node = n.Value
			continue
		case *ast.TagNode:
			node = n.Value
			continue
		}
		break
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if p := reflect.PointerTo(t); p.Implements(bytesUnmarshaler) || p.Implements(interfaceUnmarshaler) {
		return nil
	}
	switch n := node.(type) {
	case *ast.FloatNode:
		if isInteger(t.Kind()) && n.Value != math.Trunc(n.Value) {
			if file == "" { // a value decoding itself: its caller names the file
				return fmt.Errorf("%s: %s is not a whole number", key, n.Token.Value)
			}
			return Errorf(file, n, "%s: %s is not a whole number", key, n.Token.Value)
		}
	case *ast.MappingNode:
		for _, mv := range n.Values {
			if err := checkWholeEntry(file, key, mv, t); err != nil {
				return err
			}
		}
	case *ast.MappingValueNode:
		return checkWholeEntry(file, key, n, t)
	case *ast.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, v := range n.Values {
				if err := checkWhole(file, fmt.Sprintf("%s[%d]", key, i), v, t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkWholeEntry(file, key string, mv *ast.MappingValueNode, t reflect.Type) error {
	name := mv.Key.GetToken().Value
	if key != "" {
		name = key + "." + name
	}
	switch t.Kind() {
	case reflect.Map:
		return checkWhole(file, name, mv.Value, t.Elem())
	case reflect.Struct:
		if ft, ok := fieldType(t, mv.Key.GetToken().Value); ok {
			return checkWhole(file, name, mv.Value, ft)
		}
	}
	return nil
}

// fieldType is the type of the field of struct t that the YAML key names, looking into inlined
// structs.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			inner := f.Type
			for inner.Kind() == reflect.Pointer {
				inner = inner.Elem()
			}
			if inner.Kind() == reflect.Struct {
				if ft, ok := fieldType(inner, key); ok {
					return ft, true
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key && f.IsExported() {
			return f.Type, true
		}
	}
	return nil, false
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}
