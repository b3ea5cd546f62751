"""The 3 × 3 video wall of the operations room: what each tile shows, which tiles rotate."""
