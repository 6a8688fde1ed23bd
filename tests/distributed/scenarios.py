"""Small training runs that the MPI worker runs on 2 ranks and the tests run again in one process.

Every run uses a mean loss and a batch that splits evenly, the conditions under which K ranks with
B/K sequences each take the same steps as one process with B.
"""
import dataclasses

from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.train import TrainConfig

TEXT = "to be or not to be, that is the question. whether 'tis nobler in the mind to suffer. " * 12
TINY_LM = {"task": "lm", "hidden_size": 8, "embed_size": 4, "batch_size": 4, "seq_len": 6, "eval_chars": 64}

SCENARIOS = {
    # truncated BPTT: each rank carries the state of its own text columns; clipping acts on the mean gradient
    "lm_stateful_lstm": TrainConfig(**TINY_LM, cell="lstm", stateful=True, dtype="float64", optimizer="adam",
                                    lr=0.02, clip=0.5, steps=5, eval_every=5, seed=1),
    "lm_windows_gru_2_layers": TrainConfig(**TINY_LM, cell="gru", num_layers=2, dtype="float64",
                                           optimizer="rmsprop", lr=0.01, schedule="plateau", steps=4, eval_every=2,
                                           seed=2),
    "adding_gru_sgd": TrainConfig(task="adding", cell="gru", hidden_size=6, batch_size=4, T=5, dtype="float64",
                                  optimizer="sgd", lr=0.1, momentum=0.9, clip=0.0, schedule="step", steps=4,
                                  eval_every=4, eval_sequences=8, seed=3),
    "copy_rnn_float32": TrainConfig(task="copy", cell="rnn", hidden_size=8, embed_size=4, batch_size=4, delay=3,
                                    dtype="float32", optimizer="adamw", lr=0.01, weight_decay=0.01, steps=4,
                                    eval_every=4, eval_sequences=8, seed=4),
}
# stopped after RESUME_AT steps with a checkpoint, then resumed to the end
RESUMED = "lm_stateful_lstm"
RESUME_AT = 3


def corpus():
    return CharCorpus(TEXT)


def stopped_early(config):
    return dataclasses.replace(config, steps=RESUME_AT, eval_every=RESUME_AT)
