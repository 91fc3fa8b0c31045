"""Network Dissection (Bau et al. 2017) and compositional explanations (Mu & Andreas 2020) on bit-packed
pixel masks: pixel_masks (PixelMasks), netdissect (thresholds, unit masks, IoU), compositional (IoU beam
search), broden (the Broden data set format: read_broden, write_broden). Imports ops and core only.
"""
