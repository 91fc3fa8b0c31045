"""Concept builders, one layer of their own (used by the cases and the apps, never by the core): tokens
(a tokenizer's concepts of any tokenized text), linguistic (spaCy's and WordNet's word annotations aligned
to BPE tokens), lexicons (word concepts from WordNet, VADER and NRC), wordnet (WordNet 3.0, hypernym
concepts of ImageNet classes), derived (concepts found in pixels).
"""
