import { createTestDatabase, type TestDatabase } from '@pf/testing';
import pg from 'pg';
import { copyField, copyRow } from './bulk-load.js';

describe('COPY text encoding', () => {
  it('escapes exactly what COPY treats specially and writes null as \\N', () => {
    expect(copyField('plain id-1')).toBe('plain id-1');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(copyField(null)).toBe('\\N');
    expect(copyField(undefined)).toBe('\\N');
    expect(copyField(-12n)).toBe('-12');
    expect(copyField(7)).toBe('7');
    expect(copyRow(['x', null, 3n])).toBe('x\t\\N\t3\n');
  });

  describe('round trip through a real COPY', () => {
    let database: TestDatabase;
    let client: pg.Client;

    beforeAll(async () => {
      database = await createTestDatabase('copytext');
      client = new pg.Client({ connectionString: database.url });
      await client.connect();
    });

    afterAll(async () => {
      await client?.end();
      await database?.drop();
    });

    it('gives back every string as written, including the literal text \\N and an empty string', async () => {
      const { from } = await import('pg-copy-streams');
      const values = ['tab\there', 'new\nline', 'cr\rhere', 'back\\slash', '\\N', '', 'ünï €', 'end\\'];
      await client.query('CREATE TABLE texts (n int, value text)');
      const stream = client.query(from('COPY texts (n, value) FROM STDIN'));
      const done = new Promise((resolve, reject) => stream.on('finish', resolve).on('error', reject));
      stream.end(
        values.map((value, index) => copyRow([index, value])).join('') + copyRow([values.length, null]),
      );
      await done;
      const { rows } = await client.query<{ value: string | null }>('SELECT value FROM texts ORDER BY n');
      expect(rows.map((row) => row.value)).toEqual([...values, null]);
    });
  });
});
