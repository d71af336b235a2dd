import os

from hypothesis import settings

# The same profiles as the protocol property tests, so one HYPOTHESIS_PROFILE (or CI) governs
# every property in the suite, whichever packages a run collects.
settings.register_profile("default", max_examples=300)
settings.register_profile("ci", max_examples=300, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=3000)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
elif os.environ.get("CI"):
    settings.load_profile("ci")
else:
    settings.load_profile("default")
