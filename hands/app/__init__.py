"""`hands app`: the browser app (Gradio) over the project's three jobs, one tab each.

Reconstruct (the fit front end or ACR), Generate (AttentionHand) and Avatar (OHTA). Every run calls the `hands`
verb a user would type, so a run's folder under the app's output folder is exactly what the CLI writes (with its
`config.yaml`). The app chains methods (a photo's fit becomes AttentionHand's condition or OHTA's input), so it
sits in the CLI layer with `hands/cli/`. Gradio is imported only by `hands.app.ui`.
"""
