package templates

import (
	"reflect"
	"text/template/parse"
)

// Columns maps each row of the Data, by its field name (Entity, Previous,
// Company, Partner, User, Subscription), to the columns of it the body
// templates read. Job data keeps only these (see RowJSON.Keep): a row none
// of whose columns is read is left out. A nil Columns keeps every column.
type Columns map[string]ColumnSet

// ColumnSet is a set of column names.
type ColumnSet map[string]bool

func (c Columns) add(row string, cols ...string) {
	if c[row] == nil {
		c[row] = ColumnSet{}
	}
	for _, col := range cols {
		c[row][col] = true
	}
}

// Columns returns the columns the Set's bodies read, found in their parse
// trees: the column of a row method called with a literal
// (`.Company.Str "name"`) and the columns of a details spec
// ("Entity.end_date|date"; "User|person" reads personColumns). It is nil,
// every column, when a template reads a row in a way its text does not spell:
// `with .Company`, `index .Entity "x"`, a row or the whole data passed to a
// func (other than details with literal specs), a column named by a
// variable. The map is shared: do not change it.
func (s *Set) Columns() Columns { return s.columns }

// personColumns are the columns the details spec "Row|person" reads.
var personColumns = [...]string{"full_name", "display_name", "email"}

// rowFields are the fields of Data that hold rows.
var rowFields = map[string]bool{"Entity": true, "Previous": true, "Company": true, "Partner": true, "User": true, "Subscription": true}

// rowMethods are the cdc.Row methods a template may call on a row with
// literal column names.
var rowMethods = map[string]bool{"Str": true, "Int": true, "Bool": true, "Time": true, "Has": true, "Strings": true}

// columnsOf collects the columns trees read into cols; it returns false when
// one of them uses a row whole. The dot of a tree's root is taken to be the
// Data (a defined template may be called with it).
func columnsOf(cols Columns, trees ...*parse.Tree) bool {
	all := true
	for _, t := range trees {
		if t != nil && t.Root != nil && !walkColumns(cols, t.Root, true) {
			all = false
		}
	}
	return all
}

// walkColumns adds the columns n reads to cols; false: n reads a row in a way
// its text does not spell. dotData tells whether dot may be the Data there
// (not inside a with or range over something else).
func walkColumns(cols Columns, n parse.Node, dotData bool) bool {
	ok := true
	walk := func(n parse.Node, dotData bool) {
		if n != nil && !walkColumns(cols, n, dotData) {
			ok = false
		}
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return true
		}
		for _, c := range n.Nodes {
			walk(c, dotData)
		}
	case *parse.ActionNode:
		walk(n.Pipe, dotData)
	case *parse.PipeNode:
		if n == nil {
			return true
		}
		if len(n.Decl) > 0 && isData(n, dotData) {
			return false // a variable holding the whole data: what reads it is not traced
		}
		for _, c := range n.Cmds {
			walk(c, dotData)
		}
	case *parse.CommandNode:
		if !dataCallOK(n, dotData) || !detailsColumns(cols, n) {
			return false
		}
		for i, a := range n.Args {
			// A row method called with its column: `.Entity.Str "name"` (or
			// `$.Entity.Str "name"`) is a command whose first word is the
			// field chain of the method, its arguments the literals.
			if c := chain(a); i == 0 && rowCall(c) {
				for _, arg := range n.Args[1:] {
					lit, literal := arg.(*parse.StringNode)
					if !literal {
						return false // a column named by a variable or a pipeline
					}
					cols.add(c[0], lit.Text)
				}
				continue
			}
			walk(a, dotData)
		}
	case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode:
		// Any other mention of a row: the row used whole.
		if c := chain(n); len(c) > 0 && rowFields[c[0]] {
			return false
		}
		if c, isChain := n.(*parse.ChainNode); isChain {
			walk(c.Node, dotData)
		}
	case *parse.IfNode:
		walk(n.Pipe, dotData)
		walk(n.List, dotData)
		walk(n.ElseList, dotData)
	case *parse.RangeNode:
		walk(&n.BranchNode, dotData)
	case *parse.WithNode:
		walk(&n.BranchNode, dotData)
	case *parse.BranchNode: // with and range: dot is the pipeline's value inside
		walk(n.Pipe, dotData)
		walk(n.List, isData(n.Pipe, dotData))
		walk(n.ElseList, dotData)
	case *parse.TemplateNode:
		walk(n.Pipe, dotData)
	}
	return ok
}

// isData reports whether a pipeline's value may be the Data: $, or dot
// where dot may be.
func isData(p *parse.PipeNode, dotData bool) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	return dataArg(p.Cmds[0].Args[0], dotData)
}

// dataArg reports whether an argument may be the Data.
func dataArg(a parse.Node, dotData bool) bool {
	switch a := a.(type) {
	case *parse.DotNode:
		return dotData
	case *parse.VariableNode:
		return len(a.Ident) == 1 && a.Ident[0] == "$"
	}
	return false
}

// dataCallOK reports whether a func call that may be handed the whole Data
// reads only columns the text names: details with literal specs, or a func
// whose parameter there cannot hold a Data (lines takes []Detail). Any other
// func given the Data (printf, date, which take anything) could print or read
// any column.
func dataCallOK(n *parse.CommandNode, dotData bool) bool {
	fn, isFunc := n.Args[0].(*parse.IdentifierNode)
	if !isFunc {
		return true
	}
	for i, a := range n.Args[1:] {
		if !dataArg(a, dotData) {
			continue
		}
		if fn.Ident == "details" && i == 0 {
			continue // its specs: detailsColumns
		}
		if !rejectsData(funcs[fn.Ident], i) {
			return false
		}
	}
	return true
}

// detailsColumns adds the columns a details call's specs read (every
// other argument after the data, detailValue); false when a spec is not a
// literal, or names no known row.
func detailsColumns(cols Columns, n *parse.CommandNode) bool {
	if fn, isFunc := n.Args[0].(*parse.IdentifierNode); !isFunc || fn.Ident != "details" {
		return true
	}
	for i := 2; i < len(n.Args); i++ {
		lit, literal := n.Args[i].(*parse.StringNode)
		if !literal {
			return false // a label or spec the text does not spell
		}
		if i%2 == 0 {
			continue // a label
		}
		switch v := splitSpec(lit.Text); {
		case v.literal:
		case !rowFields[v.root]:
			return false
		case v.pipe == "person":
			cols.add(v.root, personColumns[:]...)
		case v.col != "":
			cols.add(v.root, v.col)
		}
	}
	return true
}

// rejectsData reports whether parameter i of the template func f cannot be
// given a Data (a concrete type other than Data and *Data); false for a
// builtin (f nil) or a func taking anything.
func rejectsData(f any, i int) bool {
	t := reflect.TypeOf(f)
	if t == nil || t.Kind() != reflect.Func {
		return false
	}
	var p reflect.Type
	switch {
	case i < t.NumIn() && !(t.IsVariadic() && i >= t.NumIn()-1):
		p = t.In(i)
	case t.IsVariadic():
		p = t.In(t.NumIn() - 1).Elem()
	default:
		return true // too many arguments: the call fails
	}
	data := reflect.TypeOf(Data{})
	return p.Kind() != reflect.Interface && p != data && p != reflect.PointerTo(data)
}

// rowCall reports whether a field chain is a row method: Entity.Str.
func rowCall(ident []string) bool {
	return len(ident) == 2 && rowFields[ident[0]] && rowMethods[ident[1]]
}

// chain is the field chain a node names from the template's data: .Entity.Str
// is [Entity Str], $.Entity [Entity]; nil for anything else (a variable
// other than $ holds whatever it was given, and a mention of a row in its
// declaration is caught there).
func chain(n parse.Node) []string {
	switch n := n.(type) {
	case *parse.FieldNode:
		return n.Ident
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return n.Ident[1:]
		}
	case *parse.ChainNode:
		if _, dot := n.Node.(*parse.DotNode); dot {
			return n.Field
		}
		if v, isVar := n.Node.(*parse.VariableNode); isVar && len(v.Ident) == 1 && v.Ident[0] == "$" {
			return n.Field
		}
	}
	return nil
}
