"""The embedded real cases (no download at run time): zoo (models and data sets from the package
registries), minilm (all-MiniLM-L6-v2 in plain torch), smollm2 (SmolLM2-135M from its GGUF). The
concepts they are labelled with live in invert_fast.concepts.
"""
