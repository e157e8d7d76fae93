//! The workspace's shape, checked: sibling modules never import each other
//! in a circle, and no production file grows past the size where it should
//! be split. Reads `src/` as text (no compiler): `use` trees and inline
//! `crate::`/`super::`/`self::` paths, with re-exports followed to the
//! module that defines the item.
//!
//! The rule is the one a reader needs: within one parent, the child modules
//! form a DAG. A parent may use its children and a child its parent's own
//! items (its error type, `Result`), as Rust modules do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Past this many lines a production file is a sign to split it.
const MAX_FILE_LINES: usize = 600;

type ModPath = Vec<String>;

#[derive(Debug, Default)]
struct Module {
    file: PathBuf,
    /// Imports: the name bound here -> the absolute path it names
    /// (`None` for an external crate).
    imports: BTreeMap<String, Option<ModPath>>,
    /// Paths this module refers to (absolute), re-exports excluded.
    refs: Vec<ModPath>,
    /// Child modules declared `#[cfg(test)]`.
    test_children: BTreeSet<String>,
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !["mod", "lib", "main"].contains(&stem) {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source with comments, string and char literals blanked out, so
/// doc links and messages are not read as imports.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !ident_before(&b, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 2..b.len()).find(|&j| b[j] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    out.push_str("' '");
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// Removes `#[cfg(test)]` items: `mod x { ... }` blocks, `use ...;` and
/// `mod x;` declarations (whose names are returned).
fn strip_test_items(code: &str) -> (String, BTreeSet<String>) {
    let mut out = String::new();
    let mut test_children = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        // The item ends at its `;` or its closing brace, whichever comes first.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = after.len();
                for (k, ch) in after[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => after.len(),
        };
        let item = &after[..end];
        if let Some(name) = item
            .strip_prefix("mod ")
            .or_else(|| item.strip_prefix("pub mod "))
        {
            let name = name.trim_end_matches(';').trim();
            if !name.contains('{') {
                test_children.insert(name.to_string());
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    (out, test_children)
}

/// `a::{b, c::d as e, self}` -> `(path, bound name)` pairs; `*` binds
/// nothing but is still a reference.
fn expand_use_tree(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    if let Some(open) = find_top(tree, '{') {
        let head: Vec<String> = split_path(&tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let mut base = prefix.to_vec();
        base.extend(head);
        for part in split_top(inner, ',') {
            if !part.trim().is_empty() {
                expand_use_tree(part, &base, out);
            }
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(split_path(path));
    if full.last().map(String::as_str) == Some("self") {
        full.pop();
    }
    if full.last().map(String::as_str) == Some("*") {
        full.pop();
        out.push((full, None));
        return;
    }
    let name = alias.or_else(|| full.last().cloned());
    out.push((full, name.filter(|n| n != "_")));
}

fn split_path(s: &str) -> Vec<String> {
    s.split("::")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn find_top(s: &str, c: char) -> Option<usize> {
    s.find(c)
}

fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The `use` statements of `code`: (is a re-export, tree text), and the
/// code with them removed.
fn use_statements(code: &str) -> (Vec<(bool, String)>, String) {
    let mut uses = Vec::new();
    let mut rest_code = String::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    let mut last = 0;
    while let Some(off) = code[i..].find("use ") {
        let at = i + off;
        let boundary = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !boundary {
            i = at + 4;
            continue;
        }
        let before = code[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let tree = &code[at + 4..at + end];
        rest_code.push_str(&code[last..at]);
        uses.push((
            public,
            tree.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
        i = at + end + 1;
        last = i;
    }
    rest_code.push_str(&code[last..]);
    (uses, rest_code)
}

/// Inline paths starting with `crate::`, `super::` or `self::`.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut i = 0;
        while let Some(off) = code[i..].find(start) {
            let at = i + off;
            i = at + start.len();
            if at > 0
                && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_' || b[at - 1] == b':')
            {
                continue;
            }
            let mut end = at;
            while end < b.len()
                && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b':')
            {
                end += 1;
            }
            out.push(split_path(&code[at..end]));
        }
    }
    out
}

/// Makes an import path absolute, as seen from module `cur`; `None` for an
/// external crate.
fn absolute(cur: &ModPath, path: &[String], children: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut base = cur.clone();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &path[1..];
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let mut child = cur.clone();
            child.push(first.to_string());
            if !children.contains(&child) {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module that defines what `path` (absolute) names.
fn resolve(path: &[String], modules: &BTreeMap<ModPath, Module>, depth: usize) -> Option<ModPath> {
    if depth > 16 {
        return None;
    }
    let mut m: ModPath = Vec::new();
    for (k, seg) in path.iter().enumerate() {
        let mut child = m.clone();
        child.push(seg.clone());
        if modules.contains_key(&child) {
            m = child;
            continue;
        }
        if let Some(target) = modules.get(&m).and_then(|md| md.imports.get(seg)) {
            let mut next = target.clone()?;
            next.extend(path[k + 1..].iter().cloned());
            return resolve(&next, modules, depth + 1);
        }
        return Some(m);
    }
    Some(m)
}

fn load_modules(src: &Path) -> BTreeMap<ModPath, Module> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: BTreeMap<ModPath, Module> = files
        .iter()
        .map(|f| {
            (
                module_path(src, f),
                Module {
                    file: f.clone(),
                    ..Default::default()
                },
            )
        })
        .collect();
    let paths: BTreeSet<ModPath> = modules.keys().cloned().collect();
    let mut texts = BTreeMap::new();
    for (path, m) in modules.iter_mut() {
        let text = std::fs::read_to_string(&m.file).unwrap();
        let (code, test_children) = strip_test_items(&code_only(&text));
        m.test_children = test_children;
        texts.insert(path.clone(), code);
    }
    // Test-only modules (and everything below them) are not the library.
    let test_only: BTreeSet<ModPath> = paths
        .iter()
        .filter(|p| {
            (1..=p.len()).any(|n| {
                let (parent, name) = (&p[..n - 1], &p[n - 1]);
                name == "tests"
                    || modules
                        .get(parent)
                        .is_some_and(|m| m.test_children.contains(name))
            })
        })
        .cloned()
        .collect();
    modules.retain(|p, _| !test_only.contains(p));
    texts.retain(|p, _| !test_only.contains(p));
    for (path, code) in &texts {
        let (uses, rest) = use_statements(code);
        let m = modules.get_mut(path).unwrap();
        for (public, tree) in uses {
            let mut expanded = Vec::new();
            expand_use_tree(&tree, &[], &mut expanded);
            for (p, name) in expanded {
                let abs = absolute(path, &p, &paths);
                if let Some(name) = name {
                    m.imports.insert(name, abs.clone());
                }
                if let (Some(abs), false) = (abs, public) {
                    m.refs.push(abs);
                }
            }
        }
        for p in inline_paths(&rest) {
            if let Some(abs) = absolute(path, &p, &paths) {
                m.refs.push(abs);
            }
        }
    }
    modules
}

/// Edges between sibling modules: parent -> (child -> children it uses).
fn sibling_edges(
    modules: &BTreeMap<ModPath, Module>,
) -> BTreeMap<ModPath, BTreeMap<String, BTreeSet<(String, String)>>> {
    let mut edges: BTreeMap<ModPath, BTreeMap<String, BTreeSet<(String, String)>>> =
        BTreeMap::new();
    for (from, m) in modules {
        for r in &m.refs {
            let Some(to) = resolve(r, modules, 0) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common >= from.len() || common >= to.len() {
                continue; // ancestor or descendant: not siblings
            }
            let parent = from[..common].to_vec();
            let why = format!("{} uses {}", from.join("::"), r.join("::"));
            edges
                .entry(parent)
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert((to[common].clone(), why));
        }
    }
    edges
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<(String, String)>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<(String, String)>>,
        stack: &mut Vec<(String, String)>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|(s, _)| s == n) {
            return Some(stack[pos..].iter().map(|(_, why)| why.clone()).collect());
        }
        if done.contains(n) {
            return None;
        }
        for (to, why) in graph.get(n).into_iter().flatten() {
            stack.push((n.to_string(), why.clone()));
            if let Some(c) = visit(to, graph, stack, done) {
                return Some(c);
            }
            stack.pop();
        }
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn sibling_modules_form_no_import_circle() {
    let modules = load_modules(&src_dir());
    let mut circles = Vec::new();
    for (parent, graph) in sibling_edges(&modules) {
        if let Some(cycle) = find_cycle(&graph) {
            let name = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            circles.push(format!("in {name}:\n    {}", cycle.join("\n    ")));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn production_files_stay_small() {
    let modules = load_modules(&src_dir());
    let big: Vec<String> = modules
        .values()
        .filter_map(|m| {
            let text = std::fs::read_to_string(&m.file).unwrap();
            // Inline test modules sit at the end of a file; they do not count.
            let production = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
            let n = production.lines().count();
            (n > MAX_FILE_LINES).then(|| format!("{} ({n} lines)", m.file.display()))
        })
        .collect();
    assert!(big.is_empty(), "split these files: {big:?}");
}

#[test]
fn the_checker_sees_a_circle() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "//! docs naming crate::a::y::Z are not imports\nmod x;\nmod y;\npub use y::Z;\n",
    )
    .unwrap();
    std::fs::write(src.join("a/x.rs"), "use super::Z;\npub struct X;\n").unwrap();
    std::fs::write(
        src.join("a/y.rs"),
        "pub struct Z;\nfn f() { let _ = crate::a::x::X; let _ = \"super::x\"; }\n",
    )
    .unwrap();
    let modules = load_modules(src);
    let edges = sibling_edges(&modules);
    let cycle = find_cycle(&edges[&vec!["a".to_string()]]).expect("x <-> y is a circle");
    assert_eq!(cycle.len(), 2, "{cycle:?}");
    // Without y's inline path there is none.
    std::fs::write(src.join("a/y.rs"), "pub struct Z;\n").unwrap();
    let modules = load_modules(src);
    assert!(sibling_edges(&modules)
        .get(&vec!["a".to_string()])
        .and_then(find_cycle)
        .is_none());
}
