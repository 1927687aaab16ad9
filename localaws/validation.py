"""Strict request validation: the input constraints AWS enforces on the server and botocore's client does not.

**AWS behaviour reproduced.** AWS checks every request against the service's own model before it acts on it.
botocore's client-side ``ParamValidator`` checks only required members, types and ``min``; everything else
(``max`` on numbers, string lengths, list and map sizes, ``enum`` membership, ``pattern``) is left to the
service, and moto checks little of it, so a call AWS refuses passes locally. ``check_request`` answers with the
first violation, as AWS would (AWS lists them all; one is enough here), in model member order:

* EC2 (``ec2`` protocol): ``InvalidParameterValue``, "Value ( 1001 ) for parameter maxResults is invalid.
  Expecting a value between 5 and 1000." (parameter paths use EC2's wire names: ``filter.1.value.2``);
* Auto Scaling and every other protocol: ``ValidationError``, "1 validation error detected: Value '100' at
  'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 50" (member names
  lower-camel, list items as ``tags.1.member.key``, the wording of AWS's Coral validation);
* EC2 filtering: more than 200 filter values in one call: ``FilterLimitExceeded``, "The maximum number of
  filter values specified on a single call is 200".

**Sources.**

* botocore's service models (``botocore/data/<service>/<version>/service-2.json``): the shape constraints
  ``min``, ``max``, ``enum`` and ``pattern``, and the member documentation, which states some limits only in
  prose (Auto Scaling ``DescribeWarmPool.MaxRecords``: "The maximum value is 50."). Integer members get the
  bounds their documentation states in one of the phrasings in ``_DOC_PHRASES`` (each one a whole sentence
  about the member's own value; a bound the model itself states wins; "if the value is larger, only N results
  are returned" keeps the upper bound out). ``documented_limits`` lists what is derived.
* Patterns are Java regular expressions. Python's ``re`` compiles most of them as they are (matched against the
  whole value, as Java's ``matches``); the UTF-16 surrogate-pair idiom ``\\uD800\\uDC00-\\uDBFF\\uDFFF`` (every
  supplementary character) becomes ``\\U00010000-\\U0010FFFF``; a pattern Python cannot compile, or would read
  differently from Java (nested classes, ``&&``), is skipped, and ``uncompilable_patterns`` lists them.
* ``FilterLimitExceeded``: a client error code of the EC2 API reference ("Error codes"). The limit of 200 values
  and the message are EC2's answer to ``DescribeInstances`` as quoted verbatim in public bug reports
  (convox/rack#2205, gjbae1212/gossm#31); no botocore model states the figure, and it was not checked against
  the API reference page itself. EC2 filters every describe the same way, so the limit applies to every EC2
  operation whose input has a ``Filters`` list of ``Name``/``Values`` filters (``DescribeInstances``,
  ``DescribeNetworkInterfaces``, ``DescribeSubnets``, ...).

Not reproduced: limits stated in documentation for members that are not integers (Auto Scaling
``DescribeAutoScalingInstances.InstanceIds``: "Array Members: Maximum number of 50 items."); cross-member rules
("MaxResults cannot be used with InstanceIds"; ``localaws.ec2`` does those it needs); the code of JSON and REST
services, which answer ``ValidationException`` on AWS where every non-EC2 protocol answers ``ValidationError``
here. The models are loaded
once per service and the checks compiled once per operation (thread-safe); a typical call costs a few
microseconds.
"""

from __future__ import annotations

import html
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal, NamedTuple

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StringShape, StructureShape

__all__ = ["FILTER_VALUE_LIMIT", "Rejection", "check_request", "documented_limits", "uncompilable_patterns"]

#: EC2: the most filter values (summed over all filters) one call may carry.
FILTER_VALUE_LIMIT: Final = 200


@dataclass(frozen=True)
class Rejection:
    """The error AWS answers instead of acting on the request."""

    code: str
    message: str
    status: int


def check_request(service: str, operation: str, params: Mapping[str, Any]) -> Rejection | None:
    """The first constraint of ``service``'s model that ``params`` break, as AWS reports it; ``None`` if none.

    ``service`` is botocore's service name (``"ec2"``), ``operation`` the API name (``"DescribeWarmPool"``),
    ``params`` the parameters as given to the boto3 client method. Raises botocore's ``UnknownServiceError``
    or ``OperationNotFoundError`` for a service or operation botocore does not know.
    """
    rules = _rules_for(service)
    compiled = rules.operation(operation)
    if compiled.limits_filter_values and _filter_value_count(params) > FILTER_VALUE_LIMIT:
        return Rejection(
            "FilterLimitExceeded",
            f"The maximum number of filter values specified on a single call is {FILTER_VALUE_LIMIT}",
            400,
        )
    if compiled.root is None:
        return None
    violation = compiled.root.check(params)
    if violation is None:
        return None
    return rules.rejection(violation)


def uncompilable_patterns(service: str) -> list[str]:
    """The ``pattern`` constraints of ``service``'s model that are not checked (Python cannot compile them, or
    would read them differently from Java), in model order, each once."""
    return _rules_for(service).uncompilable_patterns()


def documented_limits(service: str) -> dict[str, tuple[int | None, int | None]]:
    """The bounds taken from documentation text, per ``"InputStructure.Member"``: ``(minimum, maximum)``, with
    ``None`` where the documentation adds nothing to the model. Covers every structure reachable from an
    operation's input."""
    return _rules_for(service).documented_limits()


# --- violations and how each protocol words them -----------------------------------------------------------


class _Member(NamedTuple):
    """A structure member on a violation's path: its lower-camel model name and its EC2 wire name."""

    coral: str
    ec2: str


class _Key(NamedTuple):
    """A map key on a violation's path."""

    key: str


_Segment = _Member | _Key | int  # int: a list index (0-based)
_Kind = Literal["value", "length", "items", "enum", "pattern"]
_Bound = int | float


@dataclass(slots=True)
class _Violation:
    value: object
    kind: _Kind
    low: _Bound | None = None
    high: _Bound | None = None
    too_high: bool = False
    detail: str = ""  # the enum values or the pattern
    path: list[_Segment] = field(default_factory=list)  # innermost first, filled in while unwinding


def _java_text(value: object) -> str:
    """``value`` as Java's ``toString`` would show it in a Coral message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java_text(k)}={_java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java_text(item) for item in value) + "]"
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _coral_path(path: Sequence[_Segment]) -> str:
    parts: list[str] = []
    for segment in reversed(path):
        if isinstance(segment, _Member):
            parts.append(segment.coral)
        elif isinstance(segment, _Key):
            parts.append(segment.key)
        else:
            parts.append(f"{segment + 1}.member")
    return ".".join(parts)


def _ec2_path(path: Sequence[_Segment]) -> str:
    parts: list[str] = []
    for segment in reversed(path):
        if isinstance(segment, _Member):
            parts.append(segment.ec2)
        elif isinstance(segment, _Key):
            parts.append(segment.key)
        else:
            parts.append(str(segment + 1))
    return ".".join(parts)


def _coral_message(violation: _Violation) -> str:
    match violation.kind:
        case "value" | "length" | "items":
            what = "value" if violation.kind == "value" else "length"
            if violation.too_high:
                constraint = f"Member must have {what} less than or equal to {violation.high}"
            else:
                constraint = f"Member must have {what} greater than or equal to {violation.low}"
        case "enum":
            constraint = f"Member must satisfy enum value set: [{violation.detail}]"
        case "pattern":
            constraint = f"Member must satisfy regular expression pattern: {violation.detail}"
    return (
        f"1 validation error detected: Value '{_java_text(violation.value)}' at '{_coral_path(violation.path)}' "
        f"failed to satisfy constraint: {constraint}"
    )


def _ec2_range(violation: _Violation, noun: str) -> str:
    if violation.low is not None and violation.high is not None:
        return f"between {violation.low} and {violation.high} {noun}".rstrip()
    if violation.too_high:
        return f"at most {violation.high} {noun}".rstrip()
    return f"at least {violation.low} {noun}".rstrip()


def _ec2_message(violation: _Violation) -> str:
    match violation.kind:
        case "value":
            if violation.low is not None and violation.high is not None:
                reason = f"Expecting a value between {violation.low} and {violation.high}."
            elif violation.too_high:
                reason = f"Expecting a value less than or equal to {violation.high}."
            else:
                reason = f"Expecting a value greater than or equal to {violation.low}."
        case "length":
            reason = f"Expecting a length of {_ec2_range(violation, 'characters')}."
        case "items":
            reason = f"Expecting {_ec2_range(violation, 'values')}."
        case "enum":
            reason = f"Expecting one of: {violation.detail}."
        case "pattern":
            reason = f"Expecting a value matching the pattern {violation.detail}."
    return f"Value ( {_java_text(violation.value)} ) for parameter {_ec2_path(violation.path)} is invalid. {reason}"


# --- compiled checks ---------------------------------------------------------------------------------------


class _Node:
    """The checks for one shape, compiled. ``check`` ignores values of the wrong type (botocore rejects those)."""

    __slots__ = ()

    def check(self, value: object) -> _Violation | None:
        raise NotImplementedError


class _Number(_Node):
    __slots__ = ("high", "low")

    def __init__(self, low: _Bound | None, high: _Bound | None) -> None:
        self.low = low
        self.high = high

    def check(self, value: object) -> _Violation | None:
        if not isinstance(value, int | float | Decimal):
            return None
        if self.high is not None and value > self.high:
            return _Violation(value, "value", self.low, self.high, too_high=True)
        if self.low is not None and value < self.low:
            return _Violation(value, "value", self.low, self.high)
        return None


class _String(_Node):
    __slots__ = ("enum", "enum_text", "high", "low", "pattern", "pattern_text")

    def __init__(
        self,
        low: int | None,
        high: int | None,
        enum: Sequence[str],
        pattern: re.Pattern[str] | None,
        pattern_text: str,
    ) -> None:
        self.low = low
        self.high = high
        self.enum = frozenset(enum)
        self.enum_text = ", ".join(enum)
        self.pattern = pattern
        self.pattern_text = pattern_text

    def check(self, value: object) -> _Violation | None:
        if not isinstance(value, str):
            return None
        if self.high is not None and len(value) > self.high:
            return _Violation(value, "length", self.low, self.high, too_high=True)
        if self.low is not None and len(value) < self.low:
            return _Violation(value, "length", self.low, self.high)
        if self.enum and value not in self.enum:
            return _Violation(value, "enum", detail=self.enum_text)
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            return _Violation(value, "pattern", detail=self.pattern_text)
        return None


class _Blob(_Node):
    __slots__ = ("high", "low")

    def __init__(self, low: int | None, high: int | None) -> None:
        self.low = low
        self.high = high

    def check(self, value: object) -> _Violation | None:
        if not isinstance(value, bytes | bytearray | str):
            return None
        if self.high is not None and len(value) > self.high:
            return _Violation(value, "length", self.low, self.high, too_high=True)
        if self.low is not None and len(value) < self.low:
            return _Violation(value, "length", self.low, self.high)
        return None


class _List(_Node):
    __slots__ = ("high", "low", "member")

    def __init__(self, low: int | None, high: int | None, member: _Node | None) -> None:
        self.low = low
        self.high = high
        self.member = member

    def check(self, value: object) -> _Violation | None:
        if not isinstance(value, list | tuple):
            return None
        if self.high is not None and len(value) > self.high:
            return _Violation(value, "items", self.low, self.high, too_high=True)
        if self.low is not None and len(value) < self.low:
            return _Violation(value, "items", self.low, self.high)
        if self.member is not None:
            for index, item in enumerate(value):
                violation = self.member.check(item)
                if violation is not None:
                    violation.path.append(index)
                    return violation
        return None


class _Map(_Node):
    __slots__ = ("high", "key", "low", "value")

    def __init__(self, low: int | None, high: int | None, key: _Node | None, value: _Node | None) -> None:
        self.low = low
        self.high = high
        self.key = key
        self.value = value

    def check(self, value: object) -> _Violation | None:
        if not isinstance(value, Mapping):
            return None
        if self.high is not None and len(value) > self.high:
            return _Violation(value, "items", self.low, self.high, too_high=True)
        if self.low is not None and len(value) < self.low:
            return _Violation(value, "items", self.low, self.high)
        for key, item in value.items():
            violation = self.key.check(key) if self.key is not None else None
            if violation is None and self.value is not None:
                violation = self.value.check(item)
            if violation is not None:
                violation.path.append(_Key(str(key)))
                return violation
        return None


class _Structure(_Node):
    __slots__ = ("members",)

    def __init__(self) -> None:
        self.members: tuple[tuple[str, _Member, _Node], ...] = ()  # filled in after creation (recursive shapes)

    def check(self, value: object) -> _Violation | None:
        if not isinstance(value, Mapping):
            return None
        for name, segment, node in self.members:
            if name in value:
                violation = node.check(value[name])
                if violation is not None:
                    violation.path.append(segment)
                    return violation
        return None


# --- documentation text --------------------------------------------------------------------------------------

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_LEAD = r"(?:(?:constraints?|valid range|valid values|allowed values|range)\s*:\s*)?"
_LEAD_REQUIRED = r"(?:valid range|valid values|allowed values|range)\s*:\s*"
_UNIT = r"(?:\s*(?:seconds?|minutes?|hours?|days?|mib/s|iops|gib|percent))?(?:\s*\([^)]*\))?"
_DASH = "\\s*[-\u2013]\\s*"

_PhraseKind = Literal["min", "max", "above", "range"]


@dataclass(frozen=True)
class _Phrase:
    """A phrasing the models use to state a member's own range: ``"min"``/``"max"`` one bound, ``"above"``
    "greater than N" (minimum N + 1), ``"range"`` both. ``pattern`` must match a whole sentence (lower case,
    without its final period; a unit may follow the number); ``examples`` are sentences from the models."""

    kind: _PhraseKind
    pattern: re.Pattern[str]
    examples: tuple[str, ...]


def _phrase(kind: _PhraseKind, pattern: str, *examples: str) -> _Phrase:
    return _Phrase(kind, re.compile(pattern + _UNIT), examples)


_DOC_PHRASES: Final[tuple[_Phrase, ...]] = (
    _phrase(
        "max",
        rf"{_LEAD}(?:the )?maximum value (?:is|of) {_NUMBER}",
        "The maximum value is 50.",
        "Maximum value of 2,000.",
        "Constraints: Maximum value of 1000 .",
    ),
    _phrase("max", rf"{_LEAD}the maximum is {_NUMBER}", "The maximum is 100."),
    _phrase("max", rf"{_LEAD}max: ?{_NUMBER}", "Max: 180 seconds (3 minutes)."),
    _phrase(
        "max",
        rf"the default value is \d[\d,]* and the maximum value is {_NUMBER}",
        "The default value is 50 and the maximum value is 100 .",
    ),
    _phrase(
        "max",
        rf"setting an? \w+ greater than {_NUMBER} will result in an error(?: response)?",
        "Setting a PacketLength greater than 8500 will result in an error response.",
    ),
    _phrase(
        "max",
        rf"the maximum number of (?:results|items) \(up to a limit of {_NUMBER}\) to be returned[a-z ]*",
        "The maximum number of results (up to a limit of 500) to be returned in a paginated request.",
    ),
    _phrase(
        "min",
        rf"{_LEAD}(?:the )?minimum value (?:is|of) {_NUMBER}",
        "Valid Range: Minimum value of 125.",
        "Constraints: Minimum value of 0.",
    ),
    _phrase("min", rf"{_LEAD}min: ?{_NUMBER}", "Min: 30 seconds."),
    _phrase(
        "min",
        rf"{_LEAD}(?:the |this )?value must be greater than or equal to {_NUMBER}",
        "The value must be greater than or equal to 0.",
    ),
    _phrase(
        "min",
        rf"{_LEAD}a value greater than or equal to {_NUMBER}",
        "Constraints: A value greater than or equal to 30.",
    ),
    _phrase("min", rf"{_LEAD}(?:the )?value must be {_NUMBER} or greater", "Value must be 6 or greater."),
    _phrase(
        "above", rf"{_LEAD}(?:the |this )?value must be greater than {_NUMBER}", "The value must be greater than 0."
    ),
    _phrase(
        "range",
        rf"{_LEAD}(?:this )?value can be between {_NUMBER} and {_NUMBER}",
        "This value can be between 5 and 1000.",
    ),
    _phrase("range", rf"{_LEAD}a value between {_NUMBER} and {_NUMBER}", "Constraints: A value between 0 and 100."),
    _phrase(
        "range",
        rf"{_LEAD}(?:the |value |valid )?range is (?:from )?{_NUMBER} to {_NUMBER}",
        "The range is from 30 to 7200 seconds.",
        "Value range is 0 to 100.",
        "Valid range is 1 to 100,000.",
    ),
    _phrase(
        "range",
        rf"{_LEAD}value must be in the range of {_NUMBER}{_DASH}{_NUMBER}",
        "Value must be in the range of 1\u201320.",
        "Value must be in the range of 1-5.",
    ),
    # A bare "N - N" only after a lead such as "Valid range:".
    _phrase(
        "range",
        rf"{_LEAD_REQUIRED}{_NUMBER}{_DASH}{_NUMBER}",
        "Valid range: 1 - 1000",
        "Valid Range: 125 - 2000 MiB/s",
    ),
    _phrase(
        "range",
        rf"{_LEAD}positive integer from {_NUMBER} to {_NUMBER}",
        "Constraints: Positive integer from 1 to 32766.",
    ),
    _phrase("range", rf"allowed values: min:? ?{_NUMBER},? max:? ?{_NUMBER}", "Allowed values: Min 1, max 72."),
)
#: "if MaxResults is given a value larger than 1,000, only 1,000 results are returned": a larger value is
#: truncated, not refused, so the stated maximum is not a limit.
_TRUNCATES = re.compile(r"only \d[\d,]* (?:results|items) (?:are |is )?returned|we return only \d[\d,]* items")
_BLOCK_TAG = re.compile(r"</?(?:p|li|ul|ol|note|important|br|div)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.;,])")
_SENTENCE_END = re.compile(r"(?<=[.;])\s+")


def _sentences(documentation: str) -> list[str]:
    text = html.unescape(_TAG.sub(" ", _BLOCK_TAG.sub("\n", documentation)))
    sentences: list[str] = []
    for line in text.split("\n"):
        flat = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACE.sub(" ", line)).strip()
        for sentence in _SENTENCE_END.split(flat):
            cleaned = sentence.strip().rstrip(".;").strip().lower()
            if cleaned:
                sentences.append(cleaned)
    return sentences


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _doc_bounds(documentation: str) -> tuple[int | None, int | None]:
    """The ``(minimum, maximum)`` an integer member's documentation states for its own value. Several
    statements of one bound give the most permissive one."""
    lows: list[int] = []
    highs: list[int] = []
    sentences = _sentences(documentation)
    for sentence in sentences:
        for phrase in _DOC_PHRASES:
            found = phrase.pattern.fullmatch(sentence)
            if found is None:
                continue
            numbers = [_number(group) for group in found.groups()]
            match phrase.kind:
                case "max":
                    highs.append(numbers[0])
                case "min":
                    lows.append(numbers[0])
                case "above":
                    lows.append(numbers[0] + 1)
                case "range":
                    lows.append(numbers[0])
                    highs.append(numbers[1])
            break
    if highs and any(_TRUNCATES.search(sentence) for sentence in sentences):
        highs = []
    return (min(lows) if lows else None, max(highs) if highs else None)


# --- patterns ------------------------------------------------------------------------------------------------

#: Java's way to say "any supplementary character" in UTF-16: a high surrogate followed by a low one.
_SURROGATE_PAIR_RANGE = re.compile(r"\\u[dD]800\\u[dD][cC]00-\\u[dD][bB][fF][fF]\\u[dD][fF][fF][fF]")
_SUPPLEMENTARY_RANGE = r"\U00010000-\U0010FFFF"


_PATTERNS_LOCK = threading.Lock()
#: Java pattern -> compiled Python pattern (``None``: skipped). Shared by all services: ``re`` warns only the
#: first time it parses a pattern (later compiles come from its cache), so the verdict must be kept.
_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _compile_java_pattern(source: str) -> re.Pattern[str] | None:
    """``source`` as a Python pattern, or ``None`` when Python cannot compile it or would read it differently
    from Java (``re`` warns with a ``FutureWarning`` on nested classes and ``&&``, which Java reads as set
    operations)."""
    with _PATTERNS_LOCK:
        if source not in _PATTERNS:
            translated = _SURROGATE_PAIR_RANGE.sub(lambda _: _SUPPLEMENTARY_RANGE, source)
            # The warning filters are process-wide: changed only here, once per pattern, under the lock.
            with warnings.catch_warnings():
                warnings.simplefilter("error", FutureWarning)
                try:
                    compiled: re.Pattern[str] | None = re.compile(translated)
                except (re.error, FutureWarning):
                    compiled = None
            _PATTERNS[source] = compiled
        return _PATTERNS[source]


# --- one service ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Operation:
    root: _Node | None
    limits_filter_values: bool


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _ec2_wire_name(name: str, member: Shape) -> str:
    """The member's name in an EC2 query string (``Filters`` -> ``Filter``), lower-camel as EC2 messages have it."""
    serialization = member.serialization
    wire = serialization.get("queryName") or serialization.get("name") or name
    return _lower_camel(str(wire))


def _has_filter_values(model: ServiceModel, operation: str) -> bool:
    """EC2 filtering: a ``Filters`` list of structures with a ``Values`` list."""
    if model.metadata.get("protocol") != "ec2":
        return False
    input_shape = model.operation_model(operation).input_shape
    if not isinstance(input_shape, StructureShape):
        return False
    filters = input_shape.members.get("Filters")
    if not isinstance(filters, ListShape) or not isinstance(filters.member, StructureShape):
        return False
    return isinstance(filters.member.members.get("Values"), ListShape)


def _filter_value_count(params: Mapping[str, object]) -> int:
    filters = params.get("Filters")
    if not isinstance(filters, list | tuple):
        return 0
    count = 0
    for item in filters:
        values = item.get("Values") if isinstance(item, Mapping) else None
        if isinstance(values, list | tuple):
            count += len(values)
    return count


def _int_bound(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num_bound(value: object) -> _Bound | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


_NUMBER_TYPES: Final = frozenset({"integer", "long", "float", "double"})
_INTEGER_TYPES: Final = frozenset({"integer", "long"})


class _ServiceRules:
    """Everything derived from one service model: compiled operations, patterns, documented bounds."""

    def __init__(self, model: ServiceModel) -> None:
        self._model = model
        self._ec2 = model.metadata.get("protocol") == "ec2"
        self._lock = threading.Lock()
        self._operations: dict[str, _Operation] = {}
        self._nodes: dict[tuple[str, ...], _Node | None] = {}
        self._doc_bounds: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        self._render: Callable[[_Violation], str] = _ec2_message if self._ec2 else _coral_message
        self._code = "InvalidParameterValue" if self._ec2 else "ValidationError"

    def rejection(self, violation: _Violation) -> Rejection:
        return Rejection(self._code, self._render(violation), 400)

    def operation(self, name: str) -> _Operation:
        compiled = self._operations.get(name)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._operations.get(name)
            if compiled is None:
                input_shape = self._model.operation_model(name).input_shape
                root = self._node(input_shape) if input_shape is not None else None
                compiled = _Operation(root, _has_filter_values(self._model, name))
                self._operations[name] = compiled
            return compiled

    def uncompilable_patterns(self) -> list[str]:
        with self._lock:
            skipped: list[str] = []
            for name in self._model.shape_names:
                source = self._model.shape_for(name).metadata.get("pattern")
                if isinstance(source, str) and _compile_java_pattern(source) is None and source not in skipped:
                    skipped.append(source)
            return skipped

    def documented_limits(self) -> dict[str, tuple[int | None, int | None]]:
        with self._lock:
            found: dict[str, tuple[int | None, int | None]] = {}
            seen: set[str] = set()
            pending: list[Shape] = []
            for name in self._model.operation_names:
                input_shape = self._model.operation_model(name).input_shape
                if input_shape is not None:
                    pending.append(input_shape)
            while pending:
                shape = pending.pop()
                if isinstance(shape, ListShape):
                    pending.append(shape.member)
                elif isinstance(shape, MapShape):
                    pending.append(shape.value)
                elif isinstance(shape, StructureShape) and shape.name not in seen:
                    seen.add(shape.name)
                    for member_name, member in shape.members.items():
                        pending.append(member)
                        added = self._added_bounds(shape.name, member_name, member)
                        if added != (None, None):
                            found[f"{shape.name}.{member_name}"] = added
            return dict(sorted(found.items()))

    # --- compilation (under self._lock) ---

    def _added_bounds(self, structure: str, member_name: str, member: Shape) -> tuple[int | None, int | None]:
        """The bounds the member's documentation states and the model does not (integer members only)."""
        if member.type_name not in _INTEGER_TYPES:
            return (None, None)
        key = (structure, member_name)
        if key not in self._doc_bounds:
            low, high = _doc_bounds(member.documentation or "")
            metadata = member.metadata
            self._doc_bounds[key] = (
                low if "min" not in metadata else None,
                high if "max" not in metadata else None,
            )
        return self._doc_bounds[key]

    def _member_node(self, structure: str, member_name: str, member: Shape) -> _Node | None:
        added_low, added_high = self._added_bounds(structure, member_name, member)
        if added_low is None and added_high is None:
            return self._node(member)
        metadata = member.metadata
        low = _num_bound(metadata.get("min"))
        high = _num_bound(metadata.get("max"))
        return _Number(added_low if low is None else low, added_high if high is None else high)

    def _node(self, shape: Shape) -> _Node | None:
        metadata = shape.metadata
        if isinstance(shape, StructureShape):
            key: tuple[str, ...] = ("structure", shape.name)
        else:
            constraints = (metadata.get("min"), metadata.get("max"), metadata.get("pattern"))
            enum = tuple(shape.enum) if isinstance(shape, StringShape) else ()
            key = (shape.type_name, shape.name, repr(constraints), repr(enum))
        if key in self._nodes:
            return self._nodes[key]
        if isinstance(shape, StructureShape):
            structure = _Structure()
            self._nodes[key] = structure  # a recursive reference finds it while its members are compiled
            members: list[tuple[str, _Member, _Node]] = []
            for name, member in shape.members.items():
                node = self._member_node(shape.name, name, member)
                if node is not None:
                    segment = _Member(_lower_camel(name), _ec2_wire_name(name, member))
                    members.append((name, segment, node))
            structure.members = tuple(members)
            built: _Node | None = structure if members else None
        else:
            built = self._scalar_or_collection(shape)
        self._nodes[key] = built
        return built

    def _scalar_or_collection(self, shape: Shape) -> _Node | None:
        metadata = shape.metadata
        low = _int_bound(metadata.get("min"))
        high = _int_bound(metadata.get("max"))
        node: _Node | None = None
        if isinstance(shape, ListShape):
            member = self._node(shape.member)
            if (member, low, high) != (None, None, None):
                node = _List(low, high, member)
        elif isinstance(shape, MapShape):
            key, value = self._node(shape.key), self._node(shape.value)
            if (key, value, low, high) != (None, None, None, None):
                node = _Map(low, high, key, value)
        elif isinstance(shape, StringShape):
            source = metadata.get("pattern")
            source = source if isinstance(source, str) else ""
            pattern = _compile_java_pattern(source) if source else None
            if (low, high, pattern) != (None, None, None) or shape.enum:
                node = _String(low, high, list(shape.enum), pattern, source)
        elif shape.type_name in _NUMBER_TYPES:
            number_low, number_high = _num_bound(metadata.get("min")), _num_bound(metadata.get("max"))
            if (number_low, number_high) != (None, None):
                node = _Number(number_low, number_high)
        elif shape.type_name == "blob" and (low, high) != (None, None):
            node = _Blob(low, high)
        return node  # boolean, timestamp, document: nothing AWS checks beyond botocore


_RULES_LOCK = threading.Lock()
#: Derived from the installed botocore's models, which do not change while the process runs.
_RULES: dict[str, _ServiceRules] = {}


def _rules_for(service: str) -> _ServiceRules:
    rules = _RULES.get(service)
    if rules is not None:
        return rules
    with _RULES_LOCK:
        rules = _RULES.get(service)
        if rules is None:
            rules = _ServiceRules(botocore.session.get_session().get_service_model(service))
            _RULES[service] = rules
        return rules
