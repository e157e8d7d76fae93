//! A small backtracking regex matcher for the Perl patterns in the PVE
//! schema (classes, groups, alternation, quantifiers, `\d \w \s \xNN \0`,
//! `(?^:...)`, `(?i)`), so tests can check rendered values against the
//! schema without a regex dependency. Whole-string matches only, as PVE
//! anchors its patterns.

#[derive(Debug, Clone)]
enum Item {
    Char(char),
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

#[derive(Debug, Clone)]
enum Node {
    Item(Item),
    Any,
    Class { neg: bool, items: Vec<Item> },
    Group(Vec<Vec<Node>>),
    Repeat(Box<Node>, usize, usize),
}

pub struct Regex {
    alt: Vec<Vec<Node>>,
    ci: bool,
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
    ci: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> char {
        let c = self.s[self.i];
        self.i += 1;
        c
    }

    fn eat(&mut self, lit: &str) -> bool {
        let l: Vec<char> = lit.chars().collect();
        if self.s[self.i..].starts_with(&l) {
            self.i += l.len();
            true
        } else {
            false
        }
    }

    fn alt(&mut self) -> Vec<Vec<Node>> {
        let mut alts = vec![self.seq()];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.seq());
        }
        alts
    }

    fn seq(&mut self) -> Vec<Node> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            if self.eat("(?i)") {
                self.ci = true;
                continue;
            }
            if c == '^' || c == '$' {
                self.i += 1;
                continue;
            }
            let atom = self.atom();
            seq.push(self.quantified(atom));
        }
        seq
    }

    fn atom(&mut self) -> Node {
        match self.next() {
            '(' => {
                let _ = self.eat("?^:") || self.eat("?:");
                let alt = self.alt();
                assert_eq!(self.next(), ')', "unbalanced group");
                Node::Group(alt)
            }
            '[' => self.class(),
            '.' => Node::Any,
            '\\' => Node::Item(self.escape()),
            c => Node::Item(Item::Char(c)),
        }
    }

    fn escape(&mut self) -> Item {
        match self.next() {
            'd' => Item::Digit(true),
            'D' => Item::Digit(false),
            'w' => Item::Word(true),
            'W' => Item::Word(false),
            's' => Item::Space(true),
            'S' => Item::Space(false),
            'n' => Item::Char('\n'),
            'r' => Item::Char('\r'),
            't' => Item::Char('\t'),
            '0' => Item::Char('\0'),
            'x' => {
                let h: String = [self.next(), self.next()].iter().collect();
                Item::Char(char::from(u8::from_str_radix(&h, 16).expect("hex escape")))
            }
            c => Item::Char(c),
        }
    }

    fn class(&mut self) -> Node {
        let neg = self.eat("^");
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = self.next();
            if c == ']' && !first {
                break;
            }
            first = false;
            let item = if c == '\\' {
                self.escape()
            } else {
                Item::Char(c)
            };
            if let Item::Char(lo) = item {
                if self.peek() == Some('-') && self.s.get(self.i + 1) != Some(&']') {
                    self.i += 1;
                    let hi = match self.next() {
                        '\\' => match self.escape() {
                            Item::Char(h) => h,
                            other => panic!("bad range end {other:?}"),
                        },
                        h => h,
                    };
                    items.push(Item::Range(lo, hi));
                    continue;
                }
            }
            items.push(item);
        }
        Node::Class { neg, items }
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let s: String = self.s[start..self.i].iter().collect();
        s.parse().ok()
    }

    fn quantified(&mut self, atom: Node) -> Node {
        let (min, max) = match self.peek() {
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('?') => (0, 1),
            Some('{') => {
                self.i += 1;
                let min = self.number().expect("{n");
                let max = if self.eat(",") {
                    self.number().unwrap_or(usize::MAX)
                } else {
                    min
                };
                assert_eq!(self.next(), '}');
                return Node::Repeat(Box::new(atom), min, max);
            }
            _ => return atom,
        };
        self.i += 1;
        Node::Repeat(Box::new(atom), min, max)
    }
}

impl Regex {
    pub fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            s: &chars,
            i: 0,
            ci: false,
        };
        let alt = p.alt();
        assert_eq!(p.i, chars.len(), "trailing input in {pattern:?}");
        Self { alt, ci: p.ci }
    }

    pub fn is_full_match(&self, input: &str) -> bool {
        let s: Vec<char> = input.chars().collect();
        let m = Matcher { s: &s, ci: self.ci };
        m.alt(&self.alt, 0, &mut |p| p == s.len())
    }
}

struct Matcher<'a> {
    s: &'a [char],
    ci: bool,
}

impl Matcher<'_> {
    fn item(&self, item: &Item, c: char) -> bool {
        let eq = |a: char, b: char| a == b || (self.ci && a.eq_ignore_ascii_case(&b));
        match *item {
            Item::Char(x) => eq(x, c),
            Item::Range(lo, hi) => {
                (lo..=hi).contains(&c)
                    || (self.ci
                        && ((lo..=hi).contains(&c.to_ascii_lowercase())
                            || (lo..=hi).contains(&c.to_ascii_uppercase())))
            }
            Item::Digit(pos) => c.is_ascii_digit() == pos,
            Item::Word(pos) => (c.is_alphanumeric() || c == '_') == pos,
            Item::Space(pos) => c.is_whitespace() == pos,
        }
    }

    fn alt(&self, alt: &[Vec<Node>], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        alt.iter().any(|seq| self.seq(seq, pos, k))
    }

    fn seq(&self, seq: &[Node], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match seq.split_first() {
            None => k(pos),
            Some((first, rest)) => self.node(first, pos, &mut |p| self.seq(rest, p, k)),
        }
    }

    fn node(&self, node: &Node, pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match node {
            Node::Item(item) => pos < self.s.len() && self.item(item, self.s[pos]) && k(pos + 1),
            Node::Any => pos < self.s.len() && self.s[pos] != '\n' && k(pos + 1),
            Node::Class { neg, items } => {
                pos < self.s.len()
                    && items.iter().any(|i| self.item(i, self.s[pos])) != *neg
                    && k(pos + 1)
            }
            Node::Group(alt) => self.alt(alt, pos, k),
            Node::Repeat(inner, min, max) => self.repeat(inner, *min, *max, 0, pos, k),
        }
    }

    fn repeat(
        &self,
        inner: &Node,
        min: usize,
        max: usize,
        count: usize,
        pos: usize,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if count < max
            && self.node(inner, pos, &mut |p| {
                (p != pos || count < min) && self.repeat(inner, min, max, count + 1, p, k)
            })
        {
            return true;
        }
        count >= min && k(pos)
    }
}

#[test]
fn the_matcher_itself() {
    let r = Regex::new("(?^:[^\\x00-\\x08\\x10-\\x1F\\x7F]+)");
    assert!(r.is_full_match("/sbin/init --x"));
    assert!(!r.is_full_match("a\u{1}b"));
    assert!(!r.is_full_match(""));
    let r = Regex::new("[-_.\\w\\d]+");
    assert!(r.is_full_match("vmbr0.10"));
    assert!(!r.is_full_match("vmbr0,ip=1"));
    let r = Regex::new("(?^:\\d+(?:;\\d+)*)");
    assert!(r.is_full_match("10;20"));
    assert!(!r.is_full_match("10;"));
    let r = Regex::new("^(?i)[a-z0-9_][a-z0-9_\\-+.]*$");
    assert!(r.is_full_match("Pod-a.b"));
    assert!(!r.is_full_match("-a"));
    let r = Regex::new("a{2,3}b?");
    assert!(r.is_full_match("aaab") && r.is_full_match("aa") && !r.is_full_match("a"));
}
