"""Name casing for Dagger functions and the trigger tiers of SPEC 4.6.

Dagger reports function and argument names in lowerCamelCase (``testOnGithubPullRequest``,
``onChanges``); ``dagger call`` wants them in kebab-case (``test-on-github-pull-request``,
``--on-changes``), converted exactly like the Go package ``iancoleman/strcase`` does in
``ToKebab``. The trigger names pocketci looks for are built from the event: the vendor, the
event type and the filter are split into words on anything that is not an ASCII letter or
digit, and the words are camel-cased (``pull_request`` -> ``PullRequest``).

Dagger names are GraphQL names, which are ASCII only, so "letter" and "digit" here mean ASCII
letters and digits: any other character (``é``, ``/``, ``.``) separates words.
"""

from __future__ import annotations

import re

_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_IDENTIFIER_FILTER_RE = re.compile(r"[A-Za-z0-9_-]*[A-Za-z0-9][A-Za-z0-9_-]*")

DISPATCH = "dispatch"
"""The name of the catch-all tier (tier 4)."""


def camel_words(text: str) -> list[str]:
    """Split ``text`` into words on every character that is not an ASCII letter or digit.

    Case changes inside a word are kept as they are: ``myFeature`` is one word, so it
    becomes ``MyFeature`` when camel-cased (the reading a user expects from a branch name).

    Args:
        text: Any text (a vendor, an event type, a branch name...).

    Returns:
        The non-empty runs of letters and digits, in order.
    """
    return _WORD_RE.findall(text)


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


def pascal(text: str) -> str:
    """Camel-case ``text`` with a capital first letter: ``pull_request`` -> ``PullRequest``.

    Each word (see :func:`camel_words`) gets its first character upper-cased; the rest of
    the word is kept as written.

    Args:
        text: Any text.

    Returns:
        The PascalCase identifier, empty when ``text`` has no letter or digit.
    """
    return "".join(_cap(w) for w in camel_words(text))


def lower_camel(text: str) -> str:
    """Camel-case ``text`` with a lower-case first letter: ``on github push`` -> ``onGithubPush``.

    Args:
        text: Any text.

    Returns:
        The lowerCamelCase identifier, empty when ``text`` has no letter or digit.
    """
    name = pascal(text)
    return name[:1].lower() + name[1:]


def kebab(name: str) -> str:
    """Convert a Dagger name to the kebab-case that ``dagger call`` expects.

    This follows ``strcase.ToKebab`` of ``github.com/iancoleman/strcase`` byte for byte, which
    is what the Dagger CLI uses: a hyphen goes between a lower-case letter and a following
    capital or digit, between a digit and a following letter, between a capital and a
    following digit, and before the last capital of an acronym that starts a new word
    (``JSONData`` -> ``json-data``); spaces, ``_``, ``-`` and ``.`` become hyphens; everything
    is lower-cased. Examples: ``testOnGithubPullRequest`` -> ``test-on-github-pull-request``,
    ``onChanges`` -> ``on-changes``, ``userID`` -> ``user-id``, ``v2Build`` -> ``v-2-build``.

    Args:
        name: A lowerCamelCase (or any) name.

    Returns:
        The kebab-case form.
    """
    s = name.strip()
    out: list[str] = []
    n = len(s)
    for i, ch in enumerate(s):
        is_cap = "A" <= ch <= "Z"
        is_low = "a" <= ch <= "z"
        v = ch.lower() if is_cap else ch
        if i + 1 < n:
            nxt = s[i + 1]
            is_num = "0" <= v <= "9"
            next_cap = "A" <= nxt <= "Z"
            next_low = "a" <= nxt <= "z"
            next_num = "0" <= nxt <= "9"
            if (
                (is_cap and (next_low or next_num))
                or (is_low and (next_cap or next_num))
                or (is_num and (next_cap or next_low))
            ):
                if is_cap and next_low and i > 0 and "A" <= s[i - 1] <= "Z":
                    out.append("-")
                out.append(v)
                if is_low or is_num or next_num:
                    out.append("-")
                continue
        out.append("-" if v in " _-." else v)
    return "".join(out)


def filter_forms_identifier(filter_value: str) -> bool:
    """Tell whether an event's filter can take part in a tier-1 trigger name.

    A filter forms an identifier when it is made only of ASCII letters, digits, ``-`` and
    ``_`` and has at least one letter or digit: ``main``, ``develop``, ``release-candidate``,
    ``ready_for_review``, ``v2``. Any other character means it cannot: ``feature/login``
    (``/``), ``v1.2.3`` (``.``), ``fix#12``, non-ASCII letters, an empty filter. Such a filter
    never matches tier 1, because splitting it on those characters would merge distinct refs
    into one name (``feature/login``, ``feature-login`` and ``feature.login`` would all read
    ``FeatureLogin``, and ``v1.2.3`` would read like ``v123``); tiers 2 to 4, whose ``filter``
    default takes GitHub-style patterns such as ``feature/**`` or ``v1.*``, still apply.
    ``-`` and ``_`` are allowed because they are the ordinary word separators of branch names
    and pull request actions (``ready_for_review`` -> ``ReadyForReview``).

    Args:
        filter_value: The event's filter (branch, tag, or action).

    Returns:
        True when a tier-1 name can be built from it.
    """
    return _IDENTIFIER_FILTER_RE.fullmatch(filter_value) is not None


def _forms_identifier(part: str) -> bool:
    return bool(camel_words(part))


def tier_names(vendor: str, event_type: str, filter_value: str) -> list[str | None]:
    """Build the four trigger names of SPEC 4.6, most specific first, in lowerCamelCase.

    For ``github``/``pull_request``/``opened``: ``onGithubPullRequestOpened``,
    ``onGithubPullRequest``, ``onGithub``, ``dispatch``.

    Tier 1 is None when the filter cannot form an identifier (see
    :func:`filter_forms_identifier`). Tiers 1 and 2 are None when the event type has no letter
    or digit, and tiers 1 to 3 when the vendor has none (those tiers would otherwise collapse
    into the next one). Tier 4 is always ``dispatch``.

    Args:
        vendor: The forge (``github``).
        event_type: The normalized event type (``push``, ``pull_request``, ``tag``...).
        filter_value: The event's filter (branch, tag, or action).

    Returns:
        A list of exactly four entries.
    """
    tier3 = "on" + pascal(vendor) if _forms_identifier(vendor) else None
    tier2 = tier3 + pascal(event_type) if tier3 and _forms_identifier(event_type) else None
    tier1 = (
        tier2 + pascal(filter_value) if tier2 and filter_forms_identifier(filter_value) else None
    )
    return [tier1, tier2, tier3, DISPATCH]


def belongs_to(function_name: str, tier_name: str) -> bool:
    """Tell whether a function belongs to a tier (SPEC 4.6.2).

    It does when its name equals the tier name, or ends with the tier name after a non-empty
    prefix where the tier name starts a new camel-case word: ``testOnGithubPullRequest`` and
    ``lintOnGithubPullRequest`` belong to ``onGithubPullRequest``; ``buildDispatch`` belongs
    to ``dispatch``; ``pythonGithub`` does not belong to ``onGithub`` (no word boundary).

    Letter case is otherwise ignored, because a branch ``MAIN`` and a function
    ``onGithubPushMain`` differ only by how each side spells case, and Dagger normalizes the
    case of the names it reports.

    Args:
        function_name: The lowerCamelCase function name.
        tier_name: The lowerCamelCase tier name.

    Returns:
        True when the function is a trigger of that tier.
    """
    if not tier_name:
        return False
    fn = function_name.lower()
    tier = tier_name.lower()
    if fn == tier:
        return True
    if len(function_name) <= len(tier_name) or not fn.endswith(tier):
        return False
    return function_name[-len(tier_name)].isupper()
