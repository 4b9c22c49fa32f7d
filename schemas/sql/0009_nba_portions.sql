-- NBA portions as a city receives them: one delivery is (profilkennung, datum); its numbered
-- parts are spatial pieces that may arrive together or separately. Each applied part is
-- recorded with the run that applied it, so that an older delivery can be refused and the
-- parts still missing can be listed.
CREATE TABLE kataster.nba_portion (
    profilkennung   text NOT NULL,
    datum           timestamptz NOT NULL,
    laufende_nummer int NOT NULL,
    gesamtzahl      int,
    datei           text NOT NULL,
    run_id          bigint NOT NULL REFERENCES kataster.import_run (id),
    PRIMARY KEY (profilkennung, datum, laufende_nummer)
);
