"""Vocabulary synonyms: the shipped ones (catalog/reference/synonyms.csv) and those an admin
adds (table `vocabulary_synonyms`), so that a county's wording (物质产品, 林下食用菌 ...) is
understood by every import. A spelling means one code only, across labels, shipped and added
synonyms: adding one that would mean a second code is refused (409)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import vocabulary
from catalog.errors import SynonymConflict
from catalog.models import VocabularySynonym
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.errors import ValidationFailed


def stored_synonyms(session: Session) -> list[vocabulary.Synonym]:
    return [vocabulary.Synonym(r.vocabulary, r.term, r.code, r.note or "")
            for r in session.scalars(sa.select(VocabularySynonym)
                                     .order_by(VocabularySynonym.id))]


def lookup_tables(session: Session) -> dict[str, dict[str, str]]:
    """field -> {normalised spelling -> code}: labels, shipped and added synonyms."""
    return vocabulary.with_synonyms([*vocabulary.reference_synonyms(),
                                     *stored_synonyms(session)])


def list_synonyms(session: Session, *, vocabulary_name: str | None = None) -> list[dict]:
    """Every synonym, shipped (`source: reference`) and added (`registered`), by vocabulary."""
    rows = [{"vocabulary": s.vocabulary, "term": s.term, "code": s.code, "note": s.note or None,
             "source": "reference"} for s in vocabulary.reference_synonyms()]
    rows += [{"vocabulary": s.vocabulary, "term": s.term, "code": s.code, "note": s.note or None,
              "source": "registered"} for s in stored_synonyms(session)]
    if vocabulary_name:
        rows = [r for r in rows if r["vocabulary"] == vocabulary_name]
    return sorted(rows, key=lambda r: (r["vocabulary"], r["code"], r["term"]))


def add_synonym(session: Session, actor: Principal, *, vocabulary_name: str, term: str,
                code: str, note: str | None = None) -> dict:
    """Add a spelling of `code` to a vocabulary. The same spelling for the same code again
    changes nothing; for another code it is a SynonymConflict."""
    authorize(actor, "catalog.vocabulary.write")
    term = (term or "").strip()
    synonym = vocabulary.Synonym(vocabulary_name, term, code, (note or "").strip())
    tables = lookup_tables(session)
    message = vocabulary.synonym_error(tables, synonym)
    if message is not None:
        if vocabulary_name in tables and code in vocabulary.codes(vocabulary_name) and term:
            raise SynonymConflict(message, errors=[{"field": "term", "message": message}])
        field = "vocabulary" if vocabulary_name not in tables else (
            "code" if term else "term")
        raise ValidationFailed(message, errors=[{"field": field, "message": message}])
    row = {"vocabulary": vocabulary_name, "term": term, "code": code,
           "note": synonym.note or None, "source": "registered"}
    key = vocabulary.normalize_term(term)
    if tables[vocabulary_name].get(key) == code:
        return {**row, "source": "existing"}  # already understood: nothing to add
    session.add(VocabularySynonym(vocabulary=vocabulary_name, term=term, term_key=key, code=code,
                                  note=synonym.note or None, created_by=actor.label))
    session.flush()
    audit.record(session, actor, "catalog.vocabulary.synonym.create", "vocabulary_synonym",
                 f"{vocabulary_name}:{key}", after=row)
    return row
