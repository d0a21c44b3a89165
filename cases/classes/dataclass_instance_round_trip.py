CASE = {
    "family": "classes",
    "summary": "A __main__ dataclass instance as a task argument, a new one sent back: both checked field by field",
    "tags": ["dataclass", "by-value", "argument", "round-trip", "silently-wrong"],
    "expect": "pass",
    # cloudpickle < 3.0 rebuilds the dataclass field markers by value (cloudpickle#513, fixed in 3.0.0): on the
    # worker dataclasses.fields() is empty, and the class the client gets back (its own, updated from the
    # pickle) has no fields either afterwards. The values themselves come back right: only this check sees it.
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"cloudpickle": "<3"}, "wrong-result"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # cannot rebuild a 3.12 dataclass ('_DataclassParams' object has no attribute 'match_args').
                    [{"python": "3.12", "cluster_python": "3.11"}, "deserialize-error"]],
}
import dataclasses
import enum
from dataclasses import dataclass, field

import dask


class Unit(enum.Enum):
    KG = "kg"
    LB = "lb"


@dataclass(frozen=True)
class Weight:
    amount: float
    unit: Unit = Unit.KG


@dataclass
class Parcel:
    label: str
    weight: Weight
    items: list = field(default_factory=list)
    insured: bool = False


def read(obj, names):
    # what the object holds, read without raising: a value that lost a field is wrong, not a broken case
    out = {}
    for name in names:
        try:
            out[name] = getattr(obj, name)
        except Exception as e:
            out[name] = f"<{type(e).__name__}>"
    return out


FIELDS = ("label", "items", "insured")


def relabel(parcel, suffix):
    # on the worker: what arrived, field by field, and a new instance of the same class built from it
    seen = dict(read(parcel, FIELDS), amount=parcel.weight.amount, unit=parcel.weight.unit.value,
                fields=[f.name for f in dataclasses.fields(parcel)])
    heavier = dataclasses.replace(parcel, label=parcel.label + suffix, items=parcel.items + ["box"], insured=True,
                                  weight=dataclasses.replace(parcel.weight, amount=parcel.weight.amount + 1))
    return parcel, heavier, seen


sent = Parcel("P-1", Weight(2.5), ["book"])
result = dask.delayed(relabel)(sent, "-x")


def same_parcel(obj, want, amount):
    weight = getattr(obj, "weight", None)
    return (type(obj).__name__ == "Parcel" and dataclasses.is_dataclass(obj)
            and [f.name for f in dataclasses.fields(obj)] == ["label", "weight", "items", "insured"]
            and read(obj, FIELDS) == want
            and type(weight).__name__ == "Weight" and read(weight, ("amount",)) == {"amount": amount}
            # the member of the enum that came back is this session's member, not a copy that only looks like it
            and getattr(weight, "unit", None) is Unit.KG)


def check(value):
    if not (isinstance(value, tuple) and len(value) == 3):
        return False
    back, new, seen = value
    return (seen == {"label": "P-1", "items": ["book"], "insured": False, "amount": 2.5, "unit": "kg",
                     "fields": ["label", "weight", "items", "insured"]}
            and same_parcel(back, {"label": "P-1", "items": ["book"], "insured": False}, 2.5)
            and same_parcel(new, {"label": "P-1-x", "items": ["book", "box"], "insured": True}, 3.5))
