#!/usr/bin/env python3
"""Checks that the reference manual mentions every public symbol of evflow.

The symbols come from the code, not from a list kept by hand: for each public header,
clang++ parses a translation unit that includes it and dumps its AST as JSON; every
declaration directly in namespace `evflow` (not in `evflow::detail` or any other
nested namespace) is a top-level name, and for each class, struct or class template
among them its public members are collected: methods (not constructors, destructors,
operator= or deleted functions), nested types and aliases, static data members, and
the constants of public nested enums. Enumerators of namespace-scope enums count too.
A member defined outside its class, at namespace scope, is not a top-level name.
The symbols of all the headers are checked together: a name that several of them
declare (a header that includes another) is counted once.

A top-level name is covered when some code span of the manual names it (`Loop`,
`evflow::Loop`); a member when a code span contains `Type::member` (`Loop::run`).

Usage: check_manual.py [--cxx clang++-14] [--include include]
                       [--header evflow/evflow.hpp [--header evflow/tasks.hpp ...]]
                       [--ignore Name,Name] manual.md [more.md ...]
--header may be given more than once, or name several headers separated by commas;
without it, the header is evflow/evflow.hpp.
Exit status: 0 when every symbol is covered, 1 otherwise (the missing ones are listed).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cxx", default="clang++-14")
    p.add_argument("--include", default="include", help="directory holding evflow/ (added with -I)")
    p.add_argument("--header", action="append", default=[],
                   help="a public header to include (repeatable, or comma-separated); default evflow/evflow.hpp")
    p.add_argument("--ignore", default="", help="comma-separated names to leave out (top-level or Type::member)")
    p.add_argument("manuals", nargs="+")
    args = p.parse_args()
    headers = [h.strip() for value in args.header for h in value.split(",") if h.strip()]
    args.headers = list(dict.fromkeys(headers)) or ["evflow/evflow.hpp"]
    return args


def dump_ast(args, header):
    """The AST of `#include <header>` as a list of JSON objects (one per dumped declaration)."""
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as tu:
        tu.write(f"#include <{header}>\n")
    cmd = [args.cxx, "-std=c++20", "-fsyntax-only", "-Xclang", "-ast-dump=json",
           # Only declarations whose qualified name contains "evflow": the namespace is
           # dumped whole, the standard library (hundreds of MB of JSON) not at all.
           "-Xclang", "-ast-dump-filter=evflow", f"-I{args.include}", "-I.", tu.name]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(tu.name)
    if out.returncode != 0:
        sys.exit(f"check_manual: {' '.join(cmd)} failed:\n{out.stderr}")
    # The filtered dump is a sequence of JSON values, one after the other.
    decoder, text, pos, values = json.JSONDecoder(), out.stdout, 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return values
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)


class FileTracker:
    """Clang writes a location's file only when it differs from the previous one printed:
    follow them in document order to know where each declaration is."""

    def __init__(self, roots):
        self.roots = [os.path.realpath(r) + os.sep for r in roots]
        self.file = ""

    def see(self, node):
        for key in ("loc", "range"):
            stack = [node.get(key) or {}]
            while stack:
                loc = stack.pop()
                for sub in ("end", "begin", "expansionLoc", "spellingLoc"):  # popped in reverse
                    if isinstance(loc.get(sub), dict):
                        stack.append(loc[sub])
                if "file" in loc:
                    self.file = loc["file"]

    def in_project(self):
        if not self.file:
            return False
        path = os.path.realpath(self.file)
        return any(path.startswith(root) for root in self.roots)


def walk(node, tracker):
    """Visits every node in document order, keeping the tracker's file current."""
    tracker.see(node)
    yield node
    for child in node.get("inner", []):
        yield from walk(child, tracker)


def public_members(record):
    """The names of the public members of a class definition."""
    access = "public" if record.get("tagUsed") in ("struct", "union") else "private"
    for child in record.get("inner", []):
        kind = child.get("kind")
        if kind == "AccessSpecDecl":
            access = child.get("access")
            continue
        if access != "public" or child.get("isImplicit"):
            continue
        decl = child["inner"][-1] if kind == "FunctionTemplateDecl" and child.get("inner") else child
        name = child.get("name", "")
        if decl.get("kind") in ("CXXMethodDecl", "CXXConversionDecl"):
            if decl.get("explicitlyDeleted") or name == "operator=":
                continue
            yield name
        elif kind in ("CXXRecordDecl", "TypeAliasDecl", "TypedefDecl", "ClassTemplateDecl") and name:
            yield name
        elif kind == "EnumDecl":
            if name:
                yield name
            for constant in child.get("inner", []):
                if constant.get("kind") == "EnumConstantDecl":
                    yield f"{name}::{constant['name']}" if name else constant["name"]
        elif kind == "VarDecl" and child.get("storageClass") == "static":
            yield name


def collect_symbols(values, roots):
    """The top-level names directly in namespace evflow, and their public members."""
    tracker, top, members = FileTracker(roots), set(), set()
    for value in values:
        tracker.see(value)
        if value.get("kind") != "NamespaceDecl" or value.get("name") != "evflow":
            continue
        for decl in value.get("inner", []):
            tracker.see(decl)
            name, kind = decl.get("name", ""), decl.get("kind")
            if (tracker.in_project() and name and not name.startswith("_") and not decl.get("isImplicit")
                    and kind != "NamespaceDecl"  # not detail, nor any other nested namespace
                    and not out_of_line(decl)):
                top.add(name)
                members.update(f"{name}::{member}" for member in declared_members(decl))
            for _ in walk(decl, tracker):
                pass  # keeps the file current for the declarations that follow
    return top, members


def out_of_line(decl):
    """Whether `decl` is the definition of a class's member written at namespace scope
    (`auto TaskHandle<T>::outcome(...) {...}`): clang then names its semantic parent, the
    class, in parentDeclContextId. Such a definition is the member, not a name of the
    namespace."""
    if "parentDeclContextId" in decl:
        return True
    if decl.get("kind") != "FunctionTemplateDecl":
        return False
    return any("parentDeclContextId" in d for d in decl.get("inner", [])
               if d.get("kind") in ("CXXMethodDecl", "CXXConstructorDecl", "CXXConversionDecl"))


def declared_members(decl):
    """Enumerators of an enum; public members of a class or class template definition."""
    if decl.get("kind") == "EnumDecl":
        return [c["name"] for c in decl.get("inner", []) if c.get("kind") == "EnumConstantDecl"]
    record = decl
    if decl.get("kind") == "ClassTemplateDecl":
        record = next((d for d in decl.get("inner", []) if d.get("kind") == "CXXRecordDecl"), {})
    if record.get("kind") == "CXXRecordDecl" and record.get("completeDefinition"):
        return list(public_members(record))
    return []


def code_spans(text):
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # fenced blocks are examples
    return re.findall(r"(`+)(.+?)\1", text, flags=re.S)


def main():
    args = parse_args()
    ignored = {name.strip() for name in args.ignore.split(",") if name.strip()}
    top, members = set(), set()
    for header in args.headers:  # each header in a translation unit of its own
        header_top, header_members = collect_symbols(dump_ast(args, header), [".", args.include])
        top |= header_top
        members |= header_members
    top = {t for t in top if t not in ignored}
    members = {m for m in members if m not in ignored and m.split("::")[0] in top}
    spans = []
    for path in args.manuals:
        with open(path, encoding="utf-8") as f:
            spans += [span for _, span in code_spans(f.read())]
    joined = "\n".join(spans)

    def mentioned(symbol):
        pattern = r"(?<![\w:])(?:evflow::)?" + re.escape(symbol) + r"(?!\w)"
        return re.search(pattern, joined) is not None

    symbols = sorted(top) + sorted(members)
    missing = [s for s in symbols if not mentioned(s)]
    print(f"manual covers {len(symbols) - len(missing)} of {len(symbols)} public symbols")
    for symbol in missing:
        print(f"  not in the manual: `{symbol}`")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
