"""Label and field selectors, as the ``labelSelector``/``fieldSelector`` query
parameters and ``metav1.LabelSelector`` objects express them.

Label selectors follow apimachinery's ``labels.Parse`` grammar and its
canonical ``String()`` form (requirements sorted by key), because that string
is visible on the wire (``Scale.status.selector``, kubectl output).

Kubernetes has two selector values that look alike and mean the opposite:
an *empty* ``LabelSelector`` (``{}``) selects everything, a *missing* one
(``None``) selects nothing. ``label_selector_from_dict(None)`` returns
``NOTHING`` and ``label_selector_from_dict({})`` returns ``EVERYTHING``;
callers that want another reading of None (a Service without selector
manages no endpoints; a list without ``labelSelector`` lists everything)
must decide before calling.
"""

from nodeos.api.selectors.fields import FieldSelector, FieldTerm, parse_field_selector, supported_fields
from nodeos.api.selectors.labels import (
    EVERYTHING,
    NOTHING,
    LabelSelector,
    Requirement,
    label_key_error,
    label_selector_from_dict,
    label_value_error,
    parse_label_selector,
)

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Requirement",
    "label_key_error",
    "label_selector_from_dict",
    "label_value_error",
    "parse_field_selector",
    "parse_label_selector",
    "supported_fields",
]
