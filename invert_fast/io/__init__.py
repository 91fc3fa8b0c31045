"""Getting activations in and labels out at scale: capture (forward hooks, crash-safe .npy streaming),
store (NeuronStore: neuron chunks of on-disk layers), runner (explain_to_file: the chunk loop),
checkpoint (resumable chunks), sinks (where rows go), distributed (torchrun). Imports ops and core only.
"""
