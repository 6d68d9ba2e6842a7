"""untie_torch: share weights, then untie, for PyTorch (and DistributedDataParallel).

The method of untie (Yang et al., "Speeding up Deep Learning Training by
Sharing Weights and then Unsharing", arXiv 2110.03848) with untie's
semantics: tying plans AxB, the mean (or sum) shared gradient, SWE-F/A/M with
the same statistic, threshold, patience, check interval and deadline, the
same sharing_check / untie / split records in metrics.jsonl, and checkpoints
that cross over to and from untie (see crossover.py).
"""
from .controller import SharingController
from .criteria import (AdaptiveCriterion, FixedCriterion, MultiCriterion, NeverCriterion, criterion_from_description,
                       default_check_every, parse_criterion)
from .errors import UntieError
from .metrics import MetricsLog, read_metrics
from .plan import describe_groups, parse_share, plan_groups
from .crossover import load_untie_export, save_untie_checkpoint, learning_rate
from .safetensors_io import read_safetensors, write_safetensors

__all__ = [
    "SharingController", "AdaptiveCriterion", "FixedCriterion", "MultiCriterion", "NeverCriterion", "criterion_from_description",
    "default_check_every", "parse_criterion", "UntieError", "MetricsLog", "read_metrics", "describe_groups", "parse_share",
    "plan_groups", "load_untie_export", "save_untie_checkpoint", "learning_rate", "read_safetensors", "write_safetensors",
]
