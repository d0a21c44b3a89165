"""The report and the review over recorded results: ``picklematrix report``, ``picklematrix review``.

One job a module: :mod:`.results` loads, :mod:`.table` builds the outcome table, :mod:`.render` renders it,
:mod:`.asv_site` publishes asv's site, :mod:`.assets` makes it work offline, :mod:`.compare` and
:mod:`.review` review two envs, :mod:`.reviewing` is the review's command, :mod:`.comment` a pull request's
comment, :mod:`.checkout` reads the checkout, :mod:`.build` puts the report together.
Nothing is imported here: ``picklematrix review`` (picklematrix.report.reviewing) must not load the report first.
"""
