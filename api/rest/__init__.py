"""The REST resources under ``/api/v1`` (flask-smorest blueprints): each view says what it takes and what it
gives; the edge does the rest. Views hold no SQL."""
