//! An anonymous mapping touched page by page, the unit every allocation
//! workload is built from.

use memmap2::{Advice, MmapMut, MmapOptions, UncheckedAdvice};

use crate::plan::Pages;

const PAGE: usize = 4096;
const HUGE_PAGE: usize = 2 << 20;

/// Virtual space reserved up front; memory is charged only as it is touched.
#[derive(Debug)]
pub struct Region {
    /// The whole mapping (None for an empty region); with huge pages 2 MiB
    /// longer than asked, so that the region can start on an aligned address.
    map: Option<MmapMut>,
    /// Where the region starts inside the mapping.
    offset: usize,
    len: usize,
    touched: usize,
}

impl Region {
    /// Reserve `len` bytes; with huge pages, aligned to 2 MiB and advised for THP.
    pub fn reserve(len: u64, pages: Pages) -> std::io::Result<Region> {
        let len = usize::try_from(len)
            .map_err(|_| std::io::Error::other("size exceeds the address space"))?;
        if len == 0 {
            return Ok(Region {
                map: None,
                offset: 0,
                len: 0,
                touched: 0,
            });
        }
        // A mapping starts on a page; only huge pages need room to align.
        let (align, slack) = match pages {
            Pages::Huge => (HUGE_PAGE, HUGE_PAGE),
            Pages::Small => (PAGE, 0),
        };
        let map_len = len.next_multiple_of(align) + slack;
        // Private, anonymous, and without reserving swap: charged page by page.
        let map = MmapOptions::new()
            .len(map_len)
            .no_reserve_swap()
            .map_anon()?;
        let base = map.as_ptr() as usize;
        let offset = base.next_multiple_of(align) - base;
        if pages == Pages::Huge {
            // A kernel without THP refuses the advice: the region still works.
            let _ = map.advise_range(Advice::HugePage, offset, len.next_multiple_of(HUGE_PAGE));
        }
        Ok(Region {
            map: Some(map),
            offset,
            len,
            touched: 0,
        })
    }

    /// Bytes touched so far.
    pub fn touched(&self) -> u64 {
        self.touched as u64
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.map {
            Some(m) => &mut m[self.offset..self.offset + self.len],
            None => &mut [],
        }
    }

    /// Write one byte in every page up to `upto` bytes (capped at the region).
    pub fn touch_to(&mut self, upto: u64) {
        let upto = (upto.min(self.len as u64) as usize)
            .next_multiple_of(PAGE)
            .min(self.len);
        let from = self.touched.next_multiple_of(PAGE);
        let bytes = self.bytes_mut();
        for off in (from..upto).step_by(PAGE) {
            bytes[off] = 1;
        }
        // The writes are the point: keep them from being optimized away.
        std::hint::black_box(&bytes[..upto]);
        self.touched = self.touched.max(upto);
    }

    /// `len` bytes from `offset` for writing; they count as touched.
    pub fn slice_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.len, "slice past the region");
        self.touched = self.touched.max(offset + len);
        &mut self.bytes_mut()[offset..offset + len]
    }

    /// `len` bytes from `offset` for reading; untouched pages read as zeros.
    pub fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.len, "slice past the region");
        match &self.map {
            Some(m) => &m[self.offset + offset..self.offset + offset + len],
            None => &[],
        }
    }

    /// Lock the region in memory (page-locked, as a pinned DMA buffer is):
    /// exactly its bytes, not the alignment slack around them.
    pub fn lock(&mut self) -> std::io::Result<()> {
        let Some(m) = &self.map else {
            return Ok(());
        };
        let start = std::ptr::NonNull::from(&m[self.offset]).cast();
        // SAFETY: offset..offset+len lies inside the mapping, which lives as
        // long as self; mlock only pins pages, it changes no contents.
        unsafe { nix::sys::mman::mlock(start, self.len) }.map_err(std::io::Error::from)?;
        self.touched = self.len;
        Ok(())
    }

    /// Give the touched pages back to the kernel; the reservation stays.
    pub fn release(&mut self) {
        if let Some(m) = &self.map
            && self.touched > 0
        {
            // SAFETY: MADV_DONTNEED zeroes the range; &mut self means no slice
            // of it is alive, and zeros are what an untouched region holds.
            let _ = unsafe {
                m.unchecked_advise_range(UncheckedAdvice::DontNeed, self.offset, self.touched)
            };
            self.touched = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of the region, page by page (mincore), unaffected by other threads.
    fn resident(r: &Region) -> u64 {
        let pages = r.len.div_ceil(PAGE);
        let mut vec = vec![0u8; pages];
        let start = r.slice(0, r.len).as_ptr();
        // SAFETY: start..start+len is our mapping; vec has one byte per page.
        let rc = unsafe { libc::mincore(start.cast_mut().cast(), r.len, vec.as_mut_ptr()) };
        assert_eq!(rc, 0);
        vec.iter().filter(|b| *b & 1 == 1).count() as u64 * PAGE as u64
    }

    #[test]
    fn touching_charges_and_release_returns() {
        let mut r = Region::reserve(64 << 20, Pages::Small).unwrap();
        assert_eq!(resident(&r), 0, "reserving costs nothing");
        r.touch_to(32 << 20);
        assert_eq!(r.touched(), 32 << 20);
        assert_eq!(resident(&r), 32 << 20);
        r.touch_to(1 << 30);
        assert_eq!(r.touched(), 64 << 20, "capped at the region");
        assert_eq!(resident(&r), 64 << 20);
        r.release();
        assert_eq!(r.touched(), 0);
        assert_eq!(resident(&r), 0, "release returned the pages");
    }

    #[test]
    fn huge_region_is_aligned() {
        let r = Region::reserve(4 << 20, Pages::Huge).unwrap();
        assert_eq!(r.slice(0, 1).as_ptr() as usize % HUGE_PAGE, 0);
        assert!(Region::reserve(0, Pages::Small).is_ok());
    }
}
