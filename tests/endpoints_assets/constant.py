"""Returns a constant (as model-2's score.py does), to make routing observable."""


def init():
    pass


def run(raw_data):
    return [0.5, 0.5]
