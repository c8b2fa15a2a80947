"""Which hosts no selected audit item can need, decided before any host is contacted. Pure.

Audit items are findings, so they exist only after collection; but their node ids, ``-k``
keywords and the hosts they read follow from the inventory and the check catalogue, except for
subjects the facts decide (problem sections, interface pairs that are not declared). A host is
left out only when every item that would read its facts is excluded whatever those subjects
turn out to be: by the node ids given as arguments, by ``--deselect`` prefixes, or by a ``-k``
expression that is false for each of them (evaluated in three-valued logic, an unknown subject
making a keyword "maybe").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pytest_kvmha.config.inventory import Inventory
from pytest_kvmha.model import Check, Scope

# --- the -k grammar (pytest's: expr := and ('or' and)*; and := not ('and' not)*;
# not := 'not' not | '(' expr ')' | ident), in Kleene logic: True, False or None (maybe) -----

_TOKEN = re.compile(r"\s*(?:(\()|(\))|((?:\w|[:+\-.\[\]\\/])+))")
Truth = bool | None
Match = Callable[[str], Truth]


class KeywordSyntaxError(ValueError):
    """An expression this parser does not read (pytest reports it; nothing is pruned)."""


class KeywordTooDeep(ValueError):
    """An expression nested deeper than :data:`MAX_DEPTH`: a usage error, never a crash of
    the recursive parser (nor of pytest's own, which would read it next)."""


MAX_DEPTH = 100  # nested parentheses and "not"s; a real -k needs a handful


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise KeywordSyntaxError(f"-k: unexpected character at column {pos + 1}")
        out.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return out


def _depth(tokens: list[str]) -> int:
    """How deep the parser would recurse: open parentheses plus the run of "not"s before a
    term (each is one nested call)."""
    depth = deepest = nots = 0
    for t in tokens:
        if t == "not":
            nots += 1
        elif t == "(":
            depth += 1 + nots
            nots = 0
        elif t == ")":
            depth = max(depth - 1, 0)
        else:
            nots = 0
        deepest = max(deepest, depth + nots)
    return deepest


def check_depth(expression: str) -> None:
    """Raise :class:`KeywordTooDeep` for a -k nested too deep to read (else nothing)."""
    try:
        tokens = _tokens(expression)
    except KeywordSyntaxError:
        return  # pytest reports it
    if _depth(tokens) > MAX_DEPTH:
        raise KeywordTooDeep(f"-k: expression nested deeper than {MAX_DEPTH} levels")


def evaluate(expression: str, match: Match) -> Truth:
    """The value of a ``-k`` expression when each keyword is ``match(keyword)``."""
    tokens = _tokens(expression)
    if not tokens:
        return True  # an empty -k selects everything
    if _depth(tokens) > MAX_DEPTH:
        raise KeywordTooDeep(f"-k: expression nested deeper than {MAX_DEPTH} levels")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(word: str) -> bool:
        nonlocal pos
        if peek() == word:
            pos += 1
            return True
        return False

    def chain(op: str, operand: Callable[[], Truth]) -> Truth:
        """``operand (op operand)*`` in three values: the value that decides ``op`` (True for
        or, False for and) wins; else an unknown (None) side leaves the whole unknown."""
        decides = op == "or"
        value = operand()
        while take(op):
            right = operand()
            sides = (value, right)
            value = decides if decides in sides else (None if None in sides else not decides)
        return value

    def expr() -> Truth:
        return chain("or", lambda: chain("and", not_expr))

    def not_expr() -> Truth:
        nonlocal pos
        if take("not"):
            value = not_expr()
            return None if value is None else not value
        if take("("):
            value = expr()
            if not take(")"):
                raise KeywordSyntaxError("-k: missing ')'")
            return value
        word = peek()
        if word is None or word in ("and", "or", ")"):
            raise KeywordSyntaxError(f"-k: expected a keyword, got {word or 'the end'}")
        pos += 1
        return match(word)

    value = expr()
    if pos != len(tokens):
        raise KeywordSyntaxError(f"-k: unexpected {tokens[pos]!r}")
    return value


# --- an item's -k names, some of them with a hole the facts fill in -----------------------


@dataclass(frozen=True, slots=True)
class Name:
    """A name ``prefix + <hole> + suffix``; hole ``""`` means no hole, ``"digits"`` one or more
    digits (``If<k>`` pairs), ``"any"`` any text (problem sections, undeclared subjects)."""

    prefix: str
    hole: str = ""
    suffix: str = ""

    def contains(self, word: str) -> Truth:
        word, prefix, suffix = word.lower(), self.prefix.lower(), self.suffix.lower()
        if word in prefix or word in suffix:
            return True
        if not self.hole:
            return False
        if self.hole == "any":
            return None
        return None if _through_digits(word, prefix, suffix) else False


def _through_digits(word: str, prefix: str, suffix: str) -> bool:
    """Whether ``word`` is a substring of ``prefix + D + suffix`` for some digit string D."""
    n = len(word)
    for i in range(n + 1):  # word[:i] ends the prefix, word[i:j] lies in D, word[j:] starts suffix
        if i and not prefix.endswith(word[:i]):
            continue
        for j in range(i, n + 1):
            middle = word[i:j]
            if middle and not middle.isdigit():
                break
            if j < n and not suffix.startswith(word[j:]):
                continue
            if 0 < i and j < n and not middle:
                continue  # D sits between both parts and cannot be empty
            return True
    return False


def _item_truth(expression: str, names: Sequence[Name]) -> Truth:
    def match(word: str) -> Truth:
        seen: Truth = False
        for name in names:
            value = name.contains(word)
            if value is True:
                return True
            if value is None:
                seen = None
        return seen

    return evaluate(expression, match)


@dataclass(frozen=True, slots=True)
class ItemShape:
    """An audit item as far as the inventory and the catalogue tell it before collection."""

    group: str  # the node id's second part: a host or a cluster name
    check: Check
    subject: Name  # the bracketed subject
    # Hosts whose facts (and firewall configurations) the item can read: a cluster item reads
    # every member host, whatever host its finding names.
    hosts: frozenset[str]
    # The hosts among its -k keywords, as the items carry them (plugin.items): the finding's
    # own host, or every member host for a finding without one. A member-scoped item of fw-a
    # is selected by "not kvm-b" and still reads fw-b's facts on kvm-b.
    keywords: frozenset[str] | None = None

    def names(self) -> list[Name]:
        item = Name(
            f"{self.group}/{self.check.id}[" + self.subject.prefix,
            self.subject.hole,
            self.subject.suffix + "]",
        )
        hosts = self.hosts if self.keywords is None else self.keywords
        fixed = ["kvmha", self.check.id, str(self.check.severity), *sorted(hosts)]
        return [item, *(Name(n) for n in fixed)]


def item_shapes(checks: Iterable[Check], inventory: Inventory) -> list[ItemShape]:
    """Every item an audit of ``inventory`` can make (declared clusters only)."""
    out: list[ItemShape] = []
    checks = list(checks)
    cluster_scopes = {Scope.CLUSTER, Scope.CLUSTER_HOST, Scope.MEMBER, Scope.PAIR, Scope.MEMBER_NIC}
    # A segment's finding reads every cluster's facts (its subject, the segment, only the facts
    # tell), and its items carry every member host as a keyword (plugin.items).
    members = frozenset(m.host for cl in inventory.clusters for m in cl.members)
    for c in checks:
        if c.scope is Scope.SEGMENT and members:
            out.append(ItemShape("segment", c, Name("", "any"), members))
    for h in inventory.hosts:
        for c in checks:
            if c.scope is Scope.SEGMENT:
                continue
            if c.scope is Scope.HOST:
                out.append(ItemShape(h.name, c, Name(h.name), frozenset({h.name})))
            elif c.scope not in cluster_scopes:  # problems (and scopes added later): any subject
                out.append(ItemShape(h.name, c, Name("", "any"), frozenset({h.name})))
    for cl in inventory.clusters:
        hosts = frozenset(m.host for m in cl.members)
        pairs = [Name(p.name) for p in cl.pairs] or [Name("If", "digits"), Name("pairs")]
        for c in checks:
            # (subject, the host its finding names; None: every member host)
            subjects: list[tuple[Name, str | None]]
            if c.scope is Scope.CLUSTER:
                subjects = [(Name(cl.name), None)]
            elif c.scope is Scope.CLUSTER_HOST:
                subjects = [(Name(h), h) for h in sorted(hosts)]
            elif c.scope is Scope.MEMBER:
                subjects = [(Name(cl.label(m)), m.host) for m in cl.members]
            elif c.scope is Scope.PAIR:
                subjects = [(p, None) for p in pairs]
            elif c.scope is Scope.MEMBER_NIC:
                subjects = [
                    (Name(f"{cl.label(m)}:{p.prefix}", p.hole, p.suffix), m.host)
                    for m in cl.members
                    for p in pairs
                    if p.prefix != "pairs"
                ] + [(Name("pairs"), None)]
            else:
                continue  # host scopes, above
            out += [
                ItemShape(cl.name, c, s, hosts, hosts if h is None else frozenset({h}))
                for s, h in subjects
            ]
    return out


def _selected_by_nodeid(group: str, nodeids: Sequence[str]) -> bool:
    """Whether a node id given as an argument can select an item of ``kvmha/<group>/``."""
    for n in nodeids:
        parts = n.split("/")
        if parts[0] != "kvmha" or len(parts) < 2 or parts[1] in ("", group):
            return True
    return False


def _deselected(group: str, prefixes: Sequence[str]) -> bool:
    return any(f"kvmha/{group}/".startswith(p) for p in prefixes if p)


def unneeded_hosts(
    checks: Iterable[Check],
    inventory: Inventory,
    *,
    nodeids: Sequence[str] = (),
    deselect: Sequence[str] = (),
    keyword: str = "",
) -> dict[str, str]:
    """{host: why} for each host no selectable item needs; empty when nothing can be known
    (no declared cluster: discovery needs every host; or a -k this parser does not read)."""
    if not inventory.clusters:
        return {}
    reasons: dict[str, set[str]] = {h.name: set() for h in inventory.hosts}
    needed: set[str] = set()
    for shape in item_shapes(checks, inventory):
        if nodeids and not _selected_by_nodeid(shape.group, nodeids):
            why = "no node id given selects its items"
        elif _deselected(shape.group, deselect):
            why = "its items are deselected (--deselect)"
        elif keyword:
            try:
                value = _item_truth(keyword, shape.names())
            except KeywordSyntaxError:
                return {}
            if value is not False:
                needed |= shape.hosts
                continue
            why = f"-k {keyword!r} matches none of its items"
        else:
            needed |= shape.hosts
            continue
        for h in shape.hosts:
            reasons[h].add(why)
    return {h: "; ".join(sorted(r)) for h, r in reasons.items() if h not in needed and r}
