"""Command-line options under one vocabulary, with the old spellings still accepted.

Every command says `--hidden-size`, `--num-layers` and `--seq-len`, and `--steps` always counts
optimizer steps. An option renamed since keeps working under its old spelling (hidden from --help);
the command then prints one line saying which name to use instead. Each parsed namespace records
the spelling actually typed for every option, so an error names the option as the user wrote it.
"""
import argparse

SPELLED = "_spelled"      # namespace attribute: dest -> the option string given last
OLD_USED = "_old_used"    # namespace attribute: old spelling given -> the name to use now


class Spelled(argparse.Action):
    """Store the value, as argparse's "store" does, and remember which spelling gave it."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, SPELLED, {**getattr(namespace, SPELLED, {}), self.dest: option_string})


class OldSpelling(Spelled):
    """An option's former name: stores as the option does, and notes that `new_name` is the one to use."""

    def __init__(self, option_strings, dest, new_name=None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new_name = new_name

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        setattr(namespace, OLD_USED, {**getattr(namespace, OLD_USED, {}), option_string: self.new_name})


def add_option(parser, name, *old, **kwargs):
    """Add option `name` (as parser.add_argument does) and its `old` spellings, which store into the same
    place, accept the same values and are left out of --help. Returns the option's action."""
    action = parser.add_argument(name, action=Spelled, **kwargs)
    old_kwargs = {key: value for key, value in kwargs.items() if key not in ("help", "default", "dest")}
    for spelling_ in old:
        parser.add_argument(spelling_, action=OldSpelling, new_name=name, dest=action.dest, help=argparse.SUPPRESS,
                            default=argparse.SUPPRESS, **old_kwargs)
    return action


def spelling(args, dest, default=None):
    """The option string the user gave for `dest`, else `default` (else --dest-with-dashes)."""
    return getattr(args, SPELLED, {}).get(dest) or default or "--" + dest.replace("_", "-")


def old_spelling_notes(args, prog):
    """One line for each old spelling used, naming the option to use instead."""
    return [f"{prog}: note: {old} is deprecated; use {new}"
            for old, new in getattr(args, OLD_USED, {}).items()]
