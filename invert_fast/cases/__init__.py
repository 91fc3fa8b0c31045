"""The embedded real cases (no download at run time): zoo (models and data sets from the package
registries), minilm (all-MiniLM-L6-v2 in plain torch), wordnet (WordNet 3.0, hypernym concepts),
lexicons (word concepts), derived (concepts found in pixels).
"""
