CASE = {
    "family": "classes",
    "summary": "An instance of a class defined inside a function (stdlib pickle cannot find it), sent and returned",
    "tags": ["local-class", "closure", "by-value", "identity"],
    "expect": "pass",
}
import dask


def make_counter_class(step):
    class Counter:
        def __init__(self):
            self.n = 0

        def tick(self):
            self.n += step  # closes over the factory's local
            return self

    return Counter


Counter = make_counter_class(5)
c = Counter().tick()


def tick_on_worker(counter):
    return counter.tick()


result = dask.delayed(tick_on_worker)(c)


def check(value):
    # The instance the worker returns is an instance of *this* Counter class again.
    return type(value) is Counter and value.n == 10 and value.tick().n == 15
