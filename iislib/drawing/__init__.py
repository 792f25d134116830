"""The drawing: ``plots`` (the paper's plot primitives and style), ``figures`` (one function per
figure, from a sweep table or a recorded trajectory) and ``widgets`` (sliders and pickers).

Figures draw what the other layers computed: they never run the loop or a network.
"""
