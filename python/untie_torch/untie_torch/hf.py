"""A Hugging Face Trainer callback around a SharingController.

Untested here: `transformers` cannot be installed on the machine untie is
developed on (its wheels need torch >= 2.5; Debian ships 1.13), so this file
only calls the two documented TrainerCallback events and is kept small.

The Trainer clips gradients before on_pre_optimizer_step, i.e. before the
tied layers' gradients are reduced: it bounds every layer's own gradient
(untie's --clip-basis layers), and the mean of the clipped gradients is the
clipped mean. Needs transformers >= 4.43 (on_pre_optimizer_step).
"""
from .errors import UntieError

try:
    from transformers import TrainerCallback
except ImportError:  # transformers is optional
    TrainerCallback = None


def untie_callback(sharing):
    """A TrainerCallback that runs `sharing` (a SharingController over the Trainer's model) around each optimizer step."""
    if TrainerCallback is None:
        raise UntieError("untie_callback needs transformers (pip install 'transformers>=4.43'); without it, call "
                         "sharing.before_update / after_update around optimizer.step() in your own loop")

    class UntieCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.global_step == 0:
                sharing.tie_weights()

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            sharing.before_update(state.global_step, state.global_step / max(1, state.max_steps))

        def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
            sharing.after_update(state.global_step, inner, (state.global_step + 1) / max(1, state.max_steps))

    return UntieCallback()
